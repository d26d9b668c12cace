"""Ingest benchmark: `b2p ingest` against DuckDB's COPY, pandas and the gunzip floor.

    python -m benchmarks.ingest_bench [--size-mb 320] [--repetitions 3]

All contenders read the same generated v4 file (`v4file`, ≥ 300 MB of CSV, gzip) in one run on
one machine, interleaved (b2p, duckdb, … then again) so that a noisy neighbour hurts them alike.
Each is a fresh process: wall time covers interpreter start, imports, reading, typing and
writing zstd Parquet; peak RSS and CPU time (user + system, every thread) come from the kernel
(`wait4`). Figures are medians over the repetitions; throughput is MB of uncompressed CSV per
second; ratios are wall-time ratios to DuckDB's COPY with the contract types (< 1 = faster than
DuckDB). CPU-seconds per GB of CSV is what a publisher pays for, since the Lambda fan-out runs
files in parallel anyway: `benchmarks.lambda_cost` turns b2p's into GB-seconds and USD per TB
at the stack's worker memory.

Writes `benchmarks/results/ingest.json` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.candidates import CANDIDATES, b2p_command, lake_rows
from benchmarks.lambda_cost import PRICE, lambda_cost
from benchmarks.machine import ChildRun, in_child, machine_info, run_child
from benchmarks.v4file import V4File, make_v4_file

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / ".bench"
BASELINE = "duckdb"
ORDER = ("b2p", "duckdb", "duckdb_rejects", "pandas", "gunzip_isal", "gunzip_zlib")
# b2p with one thread per file (`--threads 1`): what the pool buys, on request (--only)
OPTIONAL = ("b2p_1thread",)
B2P_THREADS = {"b2p": None, "b2p_1thread": 1}  # None: b2p's default for the machine
TARGET_RATIO_TO_DUCKDB = 0.8
# pandas holds the whole file in memory and takes many times longer: one run says enough
SINGLE_RUN = frozenset({"pandas"})


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system
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
    def median_cpu_seconds(self) -> float:
        return statistics.median(run.cpu_seconds for run in self.runs)

    @property
    def median_peak_rss_mb(self) -> float:
        return statistics.median(run.peak_rss_mb for run in self.runs)


def measure(command: list[str]) -> ChildRun:
    """One contender's run; raises if it fails."""
    run = run_child(command)
    # b2p exits 2 when rows were rejected (the benchmark file has bad rows on purpose)
    if run.exit_code not in (0, 2):
        raise RuntimeError(f"{command[:4]} failed ({run.exit_code}): {run.stderr[-3000:]}")
    return run


def run_once(name: str, file: V4File, scratch: Path) -> Run:
    work = scratch / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if name in B2P_THREADS:
        source = work / "source"
        source.mkdir()
        (source / file.path.name).symlink_to(file.path.resolve())
        command = b2p_command(source, work / "lake", B2P_THREADS[name])
        run = measure(command)
        rows = lake_rows(work / "lake")
    else:
        command = [sys.executable, "-m", "benchmarks.candidates", name, str(file.path), str(work)]
        run = measure(command)
        rows = int(json.loads(run.stdout.strip().splitlines()[-1])["rows"])
    shutil.rmtree(work, ignore_errors=True)
    return Run(round(run.seconds, 3), round(run.cpu_seconds, 3), round(run.peak_rss_mb, 1), rows)


def input_file(size_mb: int) -> V4File:
    """The benchmark file, generated (in a child process) when it is not cached yet."""
    return in_child(make_v4_file, CACHE, size_mb * 1_000_000)


def run_benchmark(size_mb: int, repetitions: int, names: tuple[str, ...]) -> dict[str, object]:
    file = input_file(size_mb)
    contenders = {name: Contender(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="b2p-bench-") as folder:
        scratch = Path(folder)
        for repetition in range(repetitions):
            for name in names:
                if name in SINGLE_RUN and repetition > 0:
                    continue
                run = run_once(name, file, scratch)
                contenders[name].runs.append(run)
                print(
                    f"  {name:15s} run {repetition + 1}: {run.seconds:6.2f} s, "
                    f"{run.cpu_seconds:6.2f} CPU-s, load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    return summarise(file, contenders, repetitions)


def summarise(file: V4File, contenders: dict[str, Contender], repetitions: int) -> dict:
    megabytes = file.uncompressed_bytes / 1e6
    baseline = contenders.get(BASELINE)
    rows: dict[str, dict[str, object]] = {}
    for name, contender in contenders.items():
        seconds = contender.median_seconds
        rows[name] = {
            "median_seconds": round(seconds, 3),
            "median_cpu_seconds": round(contender.median_cpu_seconds, 3),
            "cpu_seconds_per_gb": round(contender.median_cpu_seconds / (megabytes / 1000), 2),
            "mb_per_second": round(megabytes / seconds, 1),
            "median_peak_rss_mb": round(contender.median_peak_rss_mb, 1),
            "ratio_to_duckdb": round(seconds / baseline.median_seconds, 3) if baseline else None,
            "rows_out": contender.runs[-1].rows,
            "runs": [asdict(run) for run in contender.runs],
        }
    b2p = contenders.get("b2p")
    cost = (
        lambda_cost(b2p.median_seconds, b2p.median_cpu_seconds, file.uncompressed_bytes)
        if b2p
        else None
    )
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
        "target_ratio_to_duckdb": TARGET_RATIO_TO_DUCKDB,
        "contenders": rows,
        "b2p_on_lambda": {**asdict(cost), "price": asdict(PRICE)} if cost else None,
    }


def format_table(result: dict) -> str:
    source = result["input"]
    lines = [
        f"ingest: {source['uncompressed_bytes'] / 1e6:.0f} MB CSV "
        f"({source['compressed_bytes'] / 1e6:.0f} MB gzip, {source['records']:,} records, "
        f"{source['bad_records']} bad), median of {result['repetitions']} runs",
        f"load average before: {result['machine']['load_average']}",
        f"{'contender':16s} {'seconds':>8s} {'CPU-s':>7s} {'CPU-s/GB':>9s} {'MB/s':>7s} "
        f"{'peak RSS MB':>12s} {'x DuckDB':>9s} {'rows out':>10s}",
    ]
    for name, row in result["contenders"].items():
        ratio = row["ratio_to_duckdb"]
        lines.append(
            f"{name:16s} {row['median_seconds']:8.2f} {row['median_cpu_seconds']:7.2f} "
            f"{row['cpu_seconds_per_gb']:9.2f} {row['mb_per_second']:7.1f} "
            f"{row['median_peak_rss_mb']:12.0f} {ratio if ratio is not None else '':>9} "
            f"{row['rows_out']:>10,}"
        )
    b2p = result["contenders"].get("b2p")
    if b2p and b2p["ratio_to_duckdb"] is not None:
        target = result["target_ratio_to_duckdb"]
        verdict = "met" if b2p["ratio_to_duckdb"] <= target else "NOT met"
        lines.append(
            f"b2p / DuckDB wall time {b2p['ratio_to_duckdb']} (target <= {target}): {verdict}"
        )
    cost = result.get("b2p_on_lambda")
    if cost:
        price = cost["price"]
        lines.append(
            f"b2p on Lambda at {cost['memory_mb']} MB ({cost['vcpus']} vCPU): "
            f"{cost['seconds_per_tb']:,} s, {cost['gb_seconds_per_tb']:,} GB-s, "
            f"${cost['usd_per_tb']} per TB of CSV (${price['usd_per_gb_second']:.10f}/GB-s "
            f"{price['architecture']}, as of {price['as_of']}; duration = the longer of the wall "
            "time here and the CPU-seconds over the vCPUs)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=320, help="uncompressed CSV size")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--only", nargs="*", choices=ORDER + OPTIONAL, help="run only these contenders"
    )
    args = parser.parse_args(argv)
    names = tuple(args.only) if args.only else ORDER
    unknown = set(names) - set(CANDIDATES) - set(B2P_THREADS)
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
