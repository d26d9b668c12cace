"""Process-wide memory settings of an ingest process (the CLI, a pool worker, a Lambda container).

They change how the whole process allocates, so library code never calls them: each entry point
does, once (`ingest.logs.command.run`, the pool initializer in `ingest.logs.runner`,
`ingest.aws_lambda.worker_handler`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

import pyarrow as pa


def bound_arrow_memory() -> None:
    """Make this process's large allocations return to the OS promptly.

    Arrow's default pool here (mimalloc) keeps freed blocks, so RSS climbs with every parsed
    block; jemalloc with a decay time of 0 purges at once. The decompressed blocks themselves are
    Python bytes from glibc malloc: glibc raises its mmap threshold after the first large free,
    so later 8 MB blocks are carved from the heap and fragment it; a fixed 4 MiB threshold keeps
    them mmapped and unmapped on free (1 MiB saved as much memory but cost ~7 % speed in page
    faults). Measured on a 1 GB file, one worker (benchmarks/ingest_memory.py): 326-330 MB peak
    without the fixed threshold, 294-298 MB with it, same speed.
    """
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    _fix_glibc_mmap_threshold(4 << 20)


# mallopt's parameter number for M_MMAP_THRESHOLD (glibc malloc.h)
_M_MMAP_THRESHOLD = -3


def _fix_glibc_mmap_threshold(size: int) -> None:
    """Allocations of `size` bytes or more always use mmap (no-op off glibc)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: no mallopt
        ctypes.CDLL(library).mallopt(_M_MMAP_THRESHOLD, size)
