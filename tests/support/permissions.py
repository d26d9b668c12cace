"""Running a command without root's permission override, so file modes apply to it.

Tests (and CI) often run as root, for whom `chmod 000` changes nothing: root reads and writes
any file through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. Dropping both from the child's
capability bounding set before it execs makes the kernel check modes for it as for anyone else,
so an unreadable source file or a read-only lake really is one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Sequence
from typing import Any

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def _drop_permission_override() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_as_ordinary_user(command: Sequence[str], **options: Any) -> subprocess.CompletedProcess:
    """`subprocess.run(command)`, with file permissions enforced even when we are root."""
    preexec = _drop_permission_override if os.geteuid() == 0 else None
    return subprocess.run(list(command), preexec_fn=preexec, **options)
