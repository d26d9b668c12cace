"""Process-wide memory settings of an ingest process (the CLI, a pool worker, a Lambda container).

They change how the whole process allocates, so library code never calls them: each entry point
does, once (`ingest.logs.command.run`, the pool initializer in `ingest.logs.runner`,
`ingest.aws_lambda.worker_handler`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

import pyarrow as pa


def bound_arrow_memory() -> None:
    """Make this process's large allocations return to the OS promptly.

    Arrow's default pool here (mimalloc) keeps freed blocks, so RSS climbs with every parsed
    block; jemalloc with a decay time of 0 purges at once. The decompressed blocks themselves are
    Python bytes from glibc malloc: glibc raises its mmap threshold after the first large free,
    so later multi-MB blocks are carved from the heap and fragment it; a fixed 4 MiB threshold keeps
    them mmapped and unmapped on free (1 MiB saved as much memory but cost ~7 % speed in page
    faults). Measured on a 1 GB file, one worker (benchmarks/ingest_memory.py): 326-330 MB peak
    without the fixed threshold, 294-298 MB with it, same speed.
    """
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    _fix_glibc_mmap_threshold(4 << 20)
    _tell_pyarrow_pandas_is_absent()


def _tell_pyarrow_pandas_is_absent() -> None:
    """Where pandas is installed, pyarrow imports it the first time it is handed a Python
    object, only to tell a pandas object from others: 0.4 s and 56 MB of RSS an ingest never
    uses (the image has no pandas; a virtualenv with the dev tools or a data team's has).
    pyarrow asks once per process and keeps the answer, so ask it now with pandas hidden; the
    import itself works as usual afterwards, also for pyarrow's own pandas conversions."""
    if "pandas" in sys.modules:
        return
    hidden = _Hidden("pandas")
    sys.meta_path.insert(0, hidden)
    try:
        pa.scalar(0)  # makes pyarrow ask whether pandas can be imported
    finally:
        sys.meta_path.remove(hidden)


class _Hidden(importlib.abc.MetaPathFinder):
    """A module that cannot be imported while this finder is first on `sys.meta_path`."""

    def __init__(self, name: str) -> None:
        self._name = name

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == self._name or fullname.startswith(self._name + "."):
            raise ModuleNotFoundError(f"{fullname} is hidden from pyarrow", name=fullname)
        return None


# mallopt's parameter number for M_MMAP_THRESHOLD (glibc malloc.h)
_M_MMAP_THRESHOLD = -3


def _fix_glibc_mmap_threshold(size: int) -> None:
    """Allocations of `size` bytes or more always use mmap (no-op off glibc)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: no mallopt
        ctypes.CDLL(library).mallopt(_M_MMAP_THRESHOLD, size)
