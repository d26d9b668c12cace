"""Peak memory and time of `b2p inspect` on large files: `python -m benchmarks.inspect_bench`.

Writes gzip v4 files of 0.1 and `--gigabytes` (1.0) GB uncompressed (the generator of
`benchmarks.ingest_memory`) and runs `b2p inspect --source DIR` on each in its own subprocess,
printing the child's peak RSS (getrusage of that child alone, via os.wait4) and wall time. For
scale it times `gzip -dc FILE > /dev/null`, the floor of anything that reads a whole file:
inspect reads a bounded sample (`--sample-mb`, 8 MB decompressed by default), so its time and
memory must be the same for both sizes. Not a test: figures to print and compare.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.ingest_memory import write_big_file
from benchmarks.machine import in_child, run_child


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0, help="the large file (1.0)")
    parser.add_argument("--workdir", help="where to put the files (default: a temp dir)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        for gigabytes in (0.1, args.gigabytes):
            source = Path(work) / f"source-{gigabytes}"
            source.mkdir()
            path = source / "big.csv.gz"
            size = in_child(write_big_file, path, int(gigabytes * 1e9))
            inspect = run_child(
                [sys.executable, "-m", "ingest.cli", "inspect", "--source", str(source)]
            )
            if inspect.exit_code not in (0, 2):
                print(inspect.stdout, inspect.stderr[-3000:])
                return 1
            out, peak, seconds = inspect.stdout, inspect.peak_rss_mb, inspect.seconds
            line = next((line for line in out.splitlines() if "big.csv.gz" in line), "")
            sampled = line[line.find("(") + 1 : line.find(")")]  # "first 8.4 MB" / "whole file"
            gunzip = run_child(["gzip", "-dc", str(path)]).seconds
            rows.append((size / 1e6, path.stat().st_size / 1e6, peak, seconds, sampled, gunzip))
    header = ("file MB", "gzip MB", "inspect RSS MB", "inspect s", "read", "gzip -dc s")
    print("{:>8} {:>8} {:>15} {:>10}  {:<22} {:>10}".format(*header))
    for size, compressed, peak, seconds, sampled, gunzip in rows:
        cells = (f"{size:.0f}", f"{compressed:.0f}", f"{peak:.0f}", f"{seconds:.2f}", sampled)
        print("{:>8} {:>8} {:>15} {:>10}  {:<22}".format(*cells), f"{gunzip:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
