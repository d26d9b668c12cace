"""What a benchmark ran on (CPU, cores, memory, load, library versions), and how it measures a
process: every contender runs in a child of its own, measured by the kernel for that child alone.

A child's peak RSS starts from its parent's: the kernel keeps the high-water mark across fork
and exec (Python's subprocess even shares the parent's memory until the exec). So a benchmark
never generates its inputs in its own process (`in_child`), or whatever the generator held
would be every contender's peak.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    cpu_seconds: float  # user + system
    peak_rss_mb: float
    exit_code: int
    stdout: str
    stderr: str


def run_child(command: list[str]) -> ChildRun:
    """Run `command` from the repository root; its wall time, CPU and peak RSS (`wait4`).

    Started by a small launcher interpreter, not by this process: a child's peak RSS starts
    from the memory of whoever forked it (see above), and this process may hold hundreds of MB
    by the time it measures (`make bench` runs every benchmark in one process)."""
    with tempfile.TemporaryDirectory() as work:
        out, err, usage = (Path(work) / name for name in ("out", "err", "usage.json"))
        with out.open("wb") as stdout, err.open("wb") as stderr:
            subprocess.run(
                [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(usage), *command],
                stdout=stdout,
                stderr=stderr,
                cwd=ROOT,
                check=True,
            )
        measured = json.loads(usage.read_text())
        return ChildRun(
            measured["seconds"],
            measured["cpu_seconds"],
            measured["peak_rss_kib"] / 1024,  # KiB on Linux
            measured["exit_code"],
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )


# spawns the command, waits for it alone, writes its usage to argv[1]
_LAUNCHER = """
import json, os, sys, time
clock = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - clock
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "peak_rss_kib": usage.ru_maxrss, "exit_code": os.waitstatus_to_exitcode(status)},
              out)
"""


def in_child(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a fresh interpreter (arguments and result pickled): for generators
    of benchmark inputs, whose memory must not count as a contender's."""
    with tempfile.TemporaryDirectory() as work:
        call, result = Path(work) / "call.pickle", Path(work) / "result.pickle"
        module = function.__module__
        if module == "__main__":  # the benchmark run as `python -m benchmarks.<name>`
            spec = sys.modules["__main__"].__spec__
            module = spec.name if spec else module
        call.write_bytes(pickle.dumps((module, function.__qualname__, args)))
        code = (
            "import importlib, pickle, sys\n"
            "module, name, args = pickle.loads(open(sys.argv[1], 'rb').read())\n"
            "value = getattr(importlib.import_module(module), name)(*args)\n"
            "open(sys.argv[2], 'wb').write(pickle.dumps(value))\n"
        )
        subprocess.run([sys.executable, "-c", code, str(call), str(result)], check=True, cwd=ROOT)
        return pickle.loads(result.read_bytes())


LIBRARIES = ("pyarrow", "duckdb", "pandas", "isal", "dbt-core", "dbt-duckdb")


def machine_info() -> dict[str, object]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
