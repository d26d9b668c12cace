"""`make bench`: the ingest, dbt, memory, hostile-input (`benchmarks.adversarial`) and inspect
benchmarks.

Each writes its JSON under benchmarks/results/ and prints its table; a summary of the ratios
against their targets closes the run. Sizes are chosen so the whole run takes a few minutes on
a 2-core machine (the first run also generates the inputs, cached under .bench/).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

from benchmarks import dbt_bench, ingest_bench

TARGETS = (
    ("ingest", "b2p wall time / DuckDB COPY", ("contenders", "b2p", "ratio_to_duckdb"), 1.0),
    ("dbt", "dbt full build / hand-written query (30 d)", ("full_over_hand_written",), 2.0),
    ("dbt", "one-hour incremental / full build (30 d)", ("incremental_over_full",), 0.15),
    ("dbt", "  same, touched-day window", ("touched_window_over_full",), 0.15),
    ("dbt", "incremental growth 30 -> 90 days", ("incremental_growth",), 0.20),
    ("dbt", "  same, touched-day window", ("touched_window_growth",), 0.20),
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
    if importlib.util.find_spec("benchmarks.ingest_memory") is not None:
        print("\n== ingest memory benchmark", flush=True)
        # its own process: a peak RSS must not include what the benchmarks above allocated
        subprocess.run([sys.executable, "-m", "benchmarks.ingest_memory"], check=False)
    print("\n== hostile inputs: peak RSS and time (budget 300 MB each)", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks.adversarial"], check=False)
    print("\n== inspect benchmark (1 GB file)", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks.inspect_bench"], check=False)
    print("\n== targets")
    for benchmark, label, path, target in TARGETS:
        value: object = results[benchmark]
        for key in path:
            value = value.get(key, "n/a")  # type: ignore[union-attr]
        if value == "n/a":
            print(f"{label:42s} {value:>7} (target <= {target}): not measured")
            continue
        verdict = "met" if float(value) <= target else "NOT met"  # type: ignore[arg-type]
        print(f"{label:42s} {value:>7} (target <= {target}): {verdict}")
    if not results["dbt"].get("all_marts_correct"):
        print("dbt marts differ from the ground truth: the dbt figures above mean nothing")
    print(f"benchmarks took {time.perf_counter() - clock:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
