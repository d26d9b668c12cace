"""The servers the tests start (moto, the AWS stand-in, Trino, Superset): started so that they
die with the test process, waited for until they answer, stopped with their children."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A `preexec_fn`: the kernel kills the child when the test process dies (a pytest killed
    by a timeout or by hand), so no server outlives the run that started it (Linux only)."""
    library = ctypes.util.find_library("c")
    if library is not None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(library).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def wait_until_up(
    ready: Callable[[], bool],
    process: subprocess.Popen,
    what: str,
    seconds: float,
    interval: float = 0.1,
    detail: Callable[[], str] = lambda: "",
) -> None:
    """Until `ready()` is true (an OSError counts as not yet); a RuntimeError naming `what`,
    with `detail()` (e.g. its log's tail), if `process` exits or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError):
            if ready():
                return
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}) before it was up{detail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {seconds:.0f} s{detail()}")
        time.sleep(interval)


def stop(process: subprocess.Popen, group: bool = False, seconds: float = 10) -> None:
    """SIGTERM (to its process group with `group`: a server that forks workers), then SIGKILL."""

    def send(signal_number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal_number)
            else:
                process.send_signal(signal_number)

    if process.poll() is not None:
        return
    send(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(timeout=10)
