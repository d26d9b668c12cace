"""Peak memory and time of `b2p inspect` on one large file: `python -m benchmarks.inspect_bench`.

Writes a gzip v4 file of at least `--gigabytes` uncompressed (the generator of
`benchmarks.ingest_memory`), then runs `b2p inspect --source DIR` on it in a subprocess and
prints the child's peak RSS (getrusage RUSAGE_CHILDREN) and wall time. For scale it also times
`gzip -dc FILE > /dev/null`, the floor of anything that reads the whole file: inspect reads a
bounded sample (`--sample-mb`, 8 MB decompressed by default), so its time and memory must not
grow with the file. Not a test: figures to print and compare.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.ingest_memory import write_big_file


def child_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0, help="uncompressed size (1.0)")
    parser.add_argument("--workdir", help="where to put the file (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        source = Path(work) / "source"
        source.mkdir()
        started = time.monotonic()
        size = write_big_file(source / "big.csv.gz", int(args.gigabytes * 1e9))
        compressed = (source / "big.csv.gz").stat().st_size
        print(
            f"generated {size / 1e6:.0f} MB uncompressed ({compressed / 1e6:.0f} MB gzip) in "
            f"{time.monotonic() - started:.0f} s"
        )
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "inspect", "--source", str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        inspect_seconds = time.monotonic() - started
        inspect_peak = child_peak_mb()
        if result.returncode not in (0, 2):
            print(result.stdout, result.stderr, sep="\n")
            return 1
        started = time.monotonic()
        subprocess.run(
            ["gzip", "-dc", str(source / "big.csv.gz")], stdout=subprocess.DEVNULL, check=True
        )
        gunzip_seconds = time.monotonic() - started
    sampled = next(
        (line.strip() for line in result.stdout.splitlines() if "big.csv.gz" in line), ""
    )
    status = result.returncode
    print(f"b2p inspect: peak RSS {inspect_peak:.0f} MB, {inspect_seconds:.2f} s (exit {status})")
    print(f"  sampled: {sampled}")
    print(f"gzip -dc of the whole file: {gunzip_seconds:.1f} s (the floor of reading all of it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
