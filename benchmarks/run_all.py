"""`make bench`: the ingest, dbt, memory, hostile-input (`benchmarks.adversarial`) and inspect
benchmarks.

Each writes its JSON under benchmarks/results/ and prints its table; a summary of the ratios
against their targets closes the run. Sizes are chosen so the whole run takes a few minutes on
a 2-core machine (the first run also generates the inputs, cached under .bench/).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import NamedTuple

from benchmarks import dbt_bench, ingest_bench, ingest_memory


class Target(NamedTuple):
    benchmark: str  # its results/<benchmark>.json
    label: str
    path: tuple[str, ...]  # of the figure in that JSON
    value: float
    below: bool = False  # "under" the value (memory), not "at most" (ratios)

    def verdict(self, figure: float) -> str:
        met = figure < self.value if self.below else figure <= self.value
        return f"(target {'<' if self.below else '<='} {self.value}): {'met' if met else 'NOT met'}"


D = dbt_bench
TARGETS = (
    Target(
        "ingest",
        "b2p wall time / DuckDB COPY",
        ("contenders", "b2p", "ratio_to_duckdb"),
        ingest_bench.TARGET_RATIO_TO_DUCKDB,
    ),
    Target(
        "ingest_memory",
        "peak RSS MB, 1 GB file, 1 worker",
        ("peak_rss_mb",),
        ingest_memory.TARGET_PEAK_RSS_MB,
        below=True,
    ),
    Target(
        "dbt",
        "dbt full build / hand-written query (30 d)",
        ("full_over_hand_written",),
        D.TARGET_FULL_OVER_HAND_WRITTEN,
    ),
    Target(
        "dbt",
        "one-hour incremental / full build (30 d)",
        ("incremental_over_full",),
        D.TARGET_INCREMENTAL_OVER_FULL,
    ),
    Target(
        "dbt",
        "  same, touched-day window",
        ("touched_window_over_full",),
        D.TARGET_INCREMENTAL_OVER_FULL,
    ),
    Target(
        "dbt",
        "incremental growth 30 -> 90 days",
        ("incremental_growth",),
        D.TARGET_INCREMENTAL_GROWTH,
    ),
    Target(
        "dbt", "  same, touched-day window", ("touched_window_growth",), D.TARGET_INCREMENTAL_GROWTH
    ),
)


def main() -> int:
    clock = time.perf_counter()
    results: dict[str, dict] = {}
    print("== ingest benchmark", flush=True)
    ingest_bench.main([])
    results["ingest"] = json.loads((ingest_bench.RESULTS / "ingest.json").read_text())
    print("\n== dbt benchmark", flush=True)
    dbt_bench.main([])
    results["dbt"] = json.loads((dbt_bench.RESULTS / "dbt.json").read_text())
    print("\n== ingest memory benchmark", flush=True)
    # its own process: a peak RSS must not include what the benchmarks above allocated
    memory = ingest_memory.RESULTS / "ingest_memory.json"
    memory.unlink(missing_ok=True)  # a failed run must not report the last one's figure
    subprocess.run([sys.executable, "-m", "benchmarks.ingest_memory"], check=False)
    if memory.exists():
        results["ingest_memory"] = json.loads(memory.read_text())
    print("\n== hostile inputs: peak RSS and time (budget 300 MB each)", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks.adversarial"], check=False)
    print("\n== inspect benchmark (1 GB file)", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks.inspect_bench"], check=False)
    print("\n== targets")
    for target in TARGETS:
        value: object = results.get(target.benchmark)
        for key in target.path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            print(f"{target.label:42s} {'n/a':>7} not measured")
            continue
        print(f"{target.label:42s} {value:>7} {target.verdict(float(value))}")  # type: ignore[arg-type]
    print_cost(results["ingest"])
    if not results["dbt"].get("all_marts_correct"):
        print("dbt marts differ from the ground truth: the dbt figures above mean nothing")
    print(f"benchmarks took {time.perf_counter() - clock:.0f} s")
    return 0


def print_cost(ingest: dict) -> None:
    """The headline cost figures: b2p's CPU-seconds per GB of CSV and its price on Lambda."""
    b2p = ingest["contenders"].get("b2p")
    if not b2p:
        return
    duckdb = ingest["contenders"].get("duckdb")
    versus = f" (DuckDB COPY: {duckdb['cpu_seconds_per_gb']})" if duckdb else ""
    print(f"{'b2p CPU-seconds per GB of CSV':42s} {b2p['cpu_seconds_per_gb']:>7}{versus}")
    cost = ingest.get("b2p_on_lambda")
    if cost:
        print(
            f"{'b2p on Lambda, per TB of CSV':42s} {cost['gb_seconds_per_tb']:>7,} GB-s = "
            f"${cost['usd_per_tb']} at {cost['memory_mb']} MB "
            f"(${cost['price']['usd_per_gb_second']:.10f}/GB-s as of {cost['price']['as_of']})"
        )


if __name__ == "__main__":
    sys.exit(main())
