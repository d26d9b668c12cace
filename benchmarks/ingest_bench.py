"""Ingest benchmark: `b2p ingest` against DuckDB's COPY, pandas and the gunzip floor.

    python -m benchmarks.ingest_bench [--size-mb 320] [--repetitions 3]

All contenders read the same generated v4 file (`v4file`, ≥ 300 MB of CSV, gzip) in one run on
one machine, interleaved (b2p, duckdb, … then again) so that a noisy neighbour hurts them alike.
Each is a fresh process: wall time covers interpreter start, imports, reading, typing and
writing zstd Parquet; peak RSS comes from the kernel (`wait4`). Figures are medians over the
repetitions; throughput is MB of uncompressed CSV per second; ratios are wall-time ratios to
DuckDB's COPY with the contract types (< 1 = faster than DuckDB).

Writes `benchmarks/results/ingest.json` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.candidates import CANDIDATES, b2p_command, lake_rows
from benchmarks.machine import machine_info
from benchmarks.v4file import V4File, make_v4_file

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / ".bench"
BASELINE = "duckdb"
ORDER = ("b2p", "duckdb", "duckdb_rejects", "pandas", "gunzip_isal", "gunzip_zlib")
# pandas holds the whole file in memory and takes many times longer: one run says enough
SINGLE_RUN = frozenset({"pandas"})


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    rows: int


@dataclass
class Contender:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median_seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def median_peak_rss_mb(self) -> float:
        return statistics.median(run.peak_rss_mb for run in self.runs)


def measure(command: list[str], scratch: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process; raises if it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        clock = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - clock
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    # b2p exits 2 when rows were rejected (the benchmark file has bad rows on purpose)
    if process.returncode not in (0, 2):
        raise RuntimeError(f"{command[:4]} failed ({process.returncode}): {stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout  # ru_maxrss is in KiB on Linux


def run_once(name: str, file: V4File, scratch: Path) -> Run:
    work = scratch / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if name == "b2p":
        source = work / "source"
        source.mkdir()
        (source / file.path.name).symlink_to(file.path.resolve())
        seconds, rss, _ = measure(b2p_command(source, work / "lake"), scratch)
        rows = lake_rows(work / "lake")
    else:
        command = [sys.executable, "-m", "benchmarks.candidates", name, str(file.path), str(work)]
        seconds, rss, stdout = measure(command, scratch)
        rows = int(json.loads(stdout.strip().splitlines()[-1])["rows"])
    shutil.rmtree(work, ignore_errors=True)
    return Run(round(seconds, 3), round(rss, 1), rows)


def run_benchmark(size_mb: int, repetitions: int, names: tuple[str, ...]) -> dict[str, object]:
    file = make_v4_file(CACHE, size_mb * 1_000_000)
    contenders = {name: Contender(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="b2p-bench-") as folder:
        scratch = Path(folder)
        for repetition in range(repetitions):
            for name in names:
                if name in SINGLE_RUN and repetition > 0:
                    continue
                run = run_once(name, file, scratch)
                contenders[name].runs.append(run)
                print(f"  {name:15s} run {repetition + 1}: {run.seconds:6.2f} s", flush=True)
    return summarise(file, contenders, repetitions)


def summarise(file: V4File, contenders: dict[str, Contender], repetitions: int) -> dict:
    megabytes = file.uncompressed_bytes / 1e6
    baseline = contenders.get(BASELINE)
    rows: dict[str, dict[str, object]] = {}
    for name, contender in contenders.items():
        seconds = contender.median_seconds
        rows[name] = {
            "median_seconds": round(seconds, 3),
            "mb_per_second": round(megabytes / seconds, 1),
            "median_peak_rss_mb": round(contender.median_peak_rss_mb, 1),
            "ratio_to_duckdb": round(seconds / baseline.median_seconds, 3) if baseline else None,
            "rows_out": contender.runs[-1].rows,
            "runs": [asdict(run) for run in contender.runs],
        }
    return {
        "benchmark": "ingest",
        "machine": machine_info(),
        "input": {
            "file": file.path.name,
            "compressed_bytes": file.path.stat().st_size,
            "uncompressed_bytes": file.uncompressed_bytes,
            "records": file.rows,
            "bad_records": file.bad_rows,
        },
        "repetitions": repetitions,
        "contenders": rows,
    }


def format_table(result: dict) -> str:
    source = result["input"]
    lines = [
        f"ingest: {source['uncompressed_bytes'] / 1e6:.0f} MB CSV "
        f"({source['compressed_bytes'] / 1e6:.0f} MB gzip, {source['records']:,} records, "
        f"{source['bad_records']} bad), median of {result['repetitions']} runs",
        f"{'contender':16s} {'seconds':>8s} {'MB/s':>7s} {'peak RSS MB':>12s} "
        f"{'x DuckDB':>9s} {'rows out':>10s}",
    ]
    for name, row in result["contenders"].items():
        ratio = row["ratio_to_duckdb"]
        lines.append(
            f"{name:16s} {row['median_seconds']:8.2f} {row['mb_per_second']:7.1f} "
            f"{row['median_peak_rss_mb']:12.0f} {ratio if ratio is not None else '':>9} "
            f"{row['rows_out']:>10,}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=320, help="uncompressed CSV size")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=ORDER, help="run only these contenders")
    args = parser.parse_args(argv)
    names = tuple(args.only) if args.only else ORDER
    unknown = set(names) - set(CANDIDATES) - {"b2p"}
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}")
    result = run_benchmark(args.size_mb, args.repetitions, names)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"written to {RESULTS / 'ingest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
