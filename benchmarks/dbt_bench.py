"""dbt benchmark on DuckDB at 30 and 90 days of 10x density: full build, one-hour incremental,
hand-written floor, every figure checked against the generator's ground truth.

    python -m benchmarks.dbt_bench [--days 30 90] [--repetitions 2]

For each history (lakes built by `benchmarks.bench_lake`, cached under .bench/: 20 M events in
30 days, 60 M in 90):

1. the full build: the scheduled build's command (`dbt build --exclude-resource-type unit_test`,
   infra/scheduled_dbt.sh) on an empty warehouse, with the last hour of traffic held back;
2. the held-back hour lands in the lake; the incremental run, the same command again, as the
   deployed schedule runs it: it rebuilds `lookback_days` (3) + 2 days and its data tests read
   only the window each model rebuilt (issue 10's design, macros/tests/test_window.sql);
3. the same with `--vars '{window_start: <earliest touched day - 1>}'`, the window a scheduler
   that reads the ingest log would pass (2 days instead of 5), on its own `--target-path` so that
   both keep their partial-parse state (a change of vars re-parses the whole project);
   2 and 3 alternate, `repetitions` times each (an incremental run is idempotent);
4. (30 days) one incremental run with `--no-partial-parse`: what parsing costs;
5. (30 days) `marts_by_hand.sql` in one DuckDB process on the same lake: the floor;
6. the marts after the incremental runs are compared with the ground truth (row counts and
   metric sums per day) and, at 30 days, with the hand-written query's marts: a wrong result
   fails the benchmark instead of being timed.

Each dbt run is timed as a whole process; `target/run_results.json` splits it into dbt's start
and parse (wall time before the first node) and node time per resource type. Writes
`benchmarks/results/dbt.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import duckdb

from benchmarks.bench_lake import CACHE, SLOTS_PER_HOUR, BenchLake, bench_lake, link_tree
from benchmarks.machine import machine_info
from ingest.logs.contract import CONTRACT
from tests.support.dbt_models import grain, mart_names

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BIN = Path(sys.executable).parent
MARTS = mart_names()
METRICS = ("slot_impressions", "ad_impressions", "capacity_seconds", "monetized_seconds")
# issue 14's targets: full build / hand-written query, one-hour incremental / full build, and the
# incremental run's growth from 30 to 90 days of history
TARGET_FULL_OVER_HAND_WRITTEN = 2.0
TARGET_INCREMENTAL_OVER_FULL = 0.15
TARGET_INCREMENTAL_GROWTH = 0.20
# what the scheduled dbt task runs (infra/scheduled_dbt.sh build)
SCHEDULED_BUILD = ("build", "--exclude-resource-type", "unit_test")


class Warehouse:
    """One lake + DuckDB warehouse + dbt scratch folders, and the dbt runs on them."""

    def __init__(self, work: Path, lake: Path) -> None:
        self.work = work
        self.lake = lake
        self.path = work / "warehouse.duckdb"
        profiles = work / "profiles"
        profiles.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "profiles.yml.example", profiles / "profiles.yml")
        self.env = dict(os.environ)
        self.env.update(
            B2P_LAKE=str(lake),
            B2P_DUCKDB_PATH=str(self.path),
            DBT_PROFILES_DIR=str(profiles),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            DO_NOT_TRACK="1",
        )

    def dbt(self, *args: str, target: str = "target") -> dict[str, object]:
        """Run dbt; wall seconds and the run_results.json profile of the run."""
        target_path = self.work / target
        command = [str(BIN / "dbt"), "--no-use-colors", *args, "--project-dir", str(ROOT)]
        command += ["--target-path", str(target_path), "--log-path", str(self.work)]
        clock = time.perf_counter()
        done = subprocess.run(
            command, env=self.env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - clock
        if done.returncode != 0:
            raise RuntimeError(f"dbt {' '.join(args)} failed:\n{done.stdout[-6000:]}")
        return {"wall_seconds": round(wall, 2), **_profile(target_path / "run_results.json", wall)}


def _profile(run_results: Path, wall: float) -> dict[str, object]:
    if not run_results.exists():
        return {}
    results = json.loads(run_results.read_text())
    node_seconds: dict[str, float] = defaultdict(float)
    nodes: dict[str, int] = defaultdict(int)
    slowest: list[tuple[float, str]] = []
    for result in results["results"]:
        kind = result["unique_id"].split(".")[0]
        node_seconds[kind] += result["execution_time"]
        nodes[kind] += 1
        slowest.append((result["execution_time"], result["unique_id"].split(".")[-1]))
    elapsed = results["elapsed_time"]
    return {
        # dbt's own clock starts after start-up and parsing
        "start_and_parse_seconds": round(wall - elapsed, 2),
        "run_seconds": round(elapsed, 2),
        "node_seconds": {kind: round(seconds, 2) for kind, seconds in node_seconds.items()},
        "nodes": dict(nodes),
        "slowest_nodes": {name: round(seconds, 2) for seconds, name in sorted(slowest)[-6:]},
    }


def run_by_hand(lake: Path, database: Path) -> float:
    columns = ", ".join(column.name for column in CONTRACT)
    script = (
        (ROOT / "benchmarks" / "marts_by_hand.sql")
        .read_text()
        .replace("{lake}", str(lake))
        .replace("{contract_columns}", columns)
    )
    code = (
        "import duckdb, sys; connection = duckdb.connect(sys.argv[1]);"
        " connection.execute('set enable_progress_bar = false');"
        " connection.execute(sys.stdin.read())"
    )
    clock = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(database)], input=script, text=True, check=True)
    return round(time.perf_counter() - clock, 2)


def _mart_schema(connection: duckdb.DuckDBPyConnection, mart: str) -> str:
    return connection.execute(
        "select table_schema from information_schema.tables where table_name = ? "
        "and table_catalog = current_database()",
        [mart],
    ).fetchone()[0]


def compare_with_truth(warehouse: Path, lake: BenchLake) -> dict[str, bool]:
    """Per mart: do dbt's rows per day and metric sums per day equal the ground truth's?"""
    connection = duckdb.connect(str(warehouse), read_only=True)
    sums = ", ".join(f"round(sum({metric}), 3)" for metric in METRICS)
    agree: dict[str, bool] = {}
    for mart in MARTS:
        schema = _mart_schema(connection, mart)
        # rows per day as the mart's grain counts them: a block's late slots after midnight and
        # the next block's first hour are two truth rows of one mart row
        key = ", ".join(f"coalesce(cast({column} as varchar), '')" for column in grain(mart))
        keys = f"count(distinct ({key}))"
        per_day = f"select event_date, {keys}, {sums} from {{}} group by all order by all"
        ours = connection.execute(per_day.format(f"{schema}.{mart}")).fetchall()
        truth = connection.execute(per_day.format(f"({lake.truth_sql(mart)})")).fetchall()
        agree[mart] = bool(ours) and ours == truth
    return agree


def compare_with_hand(warehouse: Path, by_hand: Path) -> dict[str, bool]:
    """Per mart: do dbt's and the hand-written query's rows and metric sums agree?"""
    connection = duckdb.connect(str(warehouse), read_only=True)
    connection.execute(f"attach '{by_hand}' as hand (read_only)")
    sums = ", ".join(f"round(sum({metric}), 3)" for metric in METRICS)
    agree: dict[str, bool] = {}
    for mart in MARTS:
        schema = _mart_schema(connection, mart)
        ours = connection.execute(f"select count(*), {sums} from {schema}.{mart}").fetchone()
        theirs = connection.execute(f"select count(*), {sums} from hand.hand_{mart}").fetchone()
        agree[mart] = ours == theirs
    return agree


def run_history(days: int, repetitions: int, floor: bool) -> dict[str, object]:
    lake = bench_lake(days)
    work = CACHE / "work" / f"{days}d"
    shutil.rmtree(work, ignore_errors=True)
    link_tree(lake.lake, work / "lake")
    warehouse = Warehouse(work, work / "lake")
    load_before = os.getloadavg()[0]
    full = warehouse.dbt(*SCHEDULED_BUILD)
    print(f"  {days} days: full build {full['wall_seconds']} s", flush=True)
    touched = lake.land_held_back(warehouse.lake)
    window_start = dt.date.fromisoformat(touched[0]) - dt.timedelta(days=1)
    touched_vars = ("--vars", f"{{window_start: {window_start}}}")
    # the touched-window variant's own partial-parse state, as a scheduler's would be
    warehouse.dbt("parse", *touched_vars, target="target_touched")
    lookback: list[dict] = []
    touched_window: list[dict] = []
    for _ in range(repetitions):
        lookback.append(warehouse.dbt(*SCHEDULED_BUILD))
        touched_window.append(
            warehouse.dbt(*SCHEDULED_BUILD, *touched_vars, target="target_touched")
        )
        print(
            f"  {days} days: incremental {lookback[-1]['wall_seconds']} s (lookback window),"
            f" {touched_window[-1]['wall_seconds']} s (window from {window_start})",
            flush=True,
        )
    result: dict[str, object] = {
        "days": days,
        "events": lake.events,
        "lake_parquet_mb": round(
            sum(path.stat().st_size for path in warehouse.lake.rglob("*.parquet")) / 1e6, 1
        ),
        "lake_files": sum(1 for _ in warehouse.lake.rglob("*.parquet")),
        "load_average_at_start": round(load_before, 2),
        "full_build": full,
        "incremental_lookback": lookback,
        "incremental_touched_window": touched_window,
        "touched_days": touched,
        "touched_window_start": window_start.isoformat(),
        "full_build_seconds": full["wall_seconds"],
        "incremental_seconds": _median(lookback),
        "incremental_touched_window_seconds": _median(touched_window),
        "marts_equal_ground_truth": compare_with_truth(warehouse.path, lake),
    }
    if floor:
        no_partial = warehouse.dbt("--no-partial-parse", *SCHEDULED_BUILD, target="target_fresh")
        hand = [run_by_hand(warehouse.lake, work / f"hand{index}.duckdb") for index in range(2)]
        result.update(
            incremental_no_partial_parse=no_partial,
            hand_written_query_seconds=statistics.median(hand),
            hand_written_runs=hand,
            marts_equal_hand_written=compare_with_hand(warehouse.path, work / "hand0.duckdb"),
        )
        print(f"  {days} days: hand-written query {hand} s", flush=True)
    result["load_average_at_end"] = round(os.getloadavg()[0], 2)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _median(runs: list[dict]) -> float:
    return statistics.median(float(run["wall_seconds"]) for run in runs)


def run_benchmark(histories: list[int], repetitions: int) -> dict[str, object]:
    runs = [
        run_history(days, repetitions, floor=index == 0) for index, days in enumerate(histories)
    ]
    first, last = runs[0], runs[-1]
    result: dict[str, object] = {
        "benchmark": "dbt",
        "machine": machine_info(),
        "slots_per_hour": SLOTS_PER_HOUR,
        "repetitions": repetitions,
        "histories": runs,
        "full_over_hand_written": round(
            first["full_build_seconds"] / first["hand_written_query_seconds"], 2
        ),
        "incremental_over_full": round(
            first["incremental_seconds"] / first["full_build_seconds"], 3
        ),
        "touched_window_over_full": round(
            first["incremental_touched_window_seconds"] / first["full_build_seconds"], 3
        ),
    }
    if len(runs) > 1:
        result["incremental_growth"] = round(
            last["incremental_seconds"] / first["incremental_seconds"] - 1, 3
        )
        result["touched_window_growth"] = round(
            last["incremental_touched_window_seconds"] / first["incremental_touched_window_seconds"]
            - 1,
            3,
        )
    checks = [*(run["marts_equal_ground_truth"].values() for run in runs)]
    result["all_marts_correct"] = all(all(values) for values in checks) and all(
        first.get("marts_equal_hand_written", {}).values()
    )
    return result


def format_table(result: dict) -> str:
    lines = []
    for run in result["histories"]:
        lines.append(
            f"dbt on DuckDB: {run['days']} days, {run['events']:,} events "
            f"({run['lake_parquet_mb']} MB Parquet, {run['lake_files']} files), "
            f"load average {run['load_average_at_start']}-{run['load_average_at_end']}"
        )
        lines.append(f"  {'step':58s} {'seconds':>8s}  {'start+parse':>11s}")
        rows = [("dbt build, full (scheduled command, empty warehouse)", run["full_build"])]
        rows.append(("incremental after one hour, lookback window (deployed)", None))
        rows.append(("incremental, window from the touched day - 1", None))
        for label, profile in rows:
            if profile is None:
                key = "incremental_" + ("lookback" if "lookback" in label else "touched_window")
                seconds = _median(run[key])
                parse = statistics.median(p["start_and_parse_seconds"] for p in run[key])
            else:
                seconds, parse = profile["wall_seconds"], profile["start_and_parse_seconds"]
            lines.append(f"  {label:58s} {seconds:8.2f}  {parse:11.2f}")
        if "hand_written_query_seconds" in run:
            no_partial = run["incremental_no_partial_parse"]
            lines.append(
                f"  {'incremental, lookback, --no-partial-parse':58s} "
                f"{no_partial['wall_seconds']:8.2f}  {no_partial['start_and_parse_seconds']:11.2f}"
            )
            lines.append(
                f"  {'hand-written DuckDB query (floor)':58s} "
                f"{run['hand_written_query_seconds']:8.2f}"
            )
        lines.append(
            "  marts equal the ground truth: "
            + ", ".join(
                f"{name} {'yes' if ok else 'NO'}"
                for name, ok in run["marts_equal_ground_truth"].items()
            )
        )
        if "marts_equal_hand_written" in run:
            same = all(run["marts_equal_hand_written"].values())
            lines.append(f"  marts equal the hand-written query's: {'yes' if same else 'NO'}")
    lines.append(f"full build / hand-written: {result['full_over_hand_written']}")
    lines.append(
        f"incremental / full: {result['incremental_over_full']} (lookback), "
        f"{result['touched_window_over_full']} (touched-day window)"
    )
    if "incremental_growth" in result:
        lines.append(
            f"incremental growth {result['histories'][0]['days']} -> "
            f"{result['histories'][-1]['days']} days: {result['incremental_growth']:+.1%} "
            f"(lookback), {result['touched_window_growth']:+.1%} (touched-day window)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 90])
    parser.add_argument("--repetitions", type=int, default=2)
    args = parser.parse_args(argv)
    result = run_benchmark(args.days, args.repetitions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dbt.json").write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"written to {RESULTS / 'dbt.json'}")
    if not result["all_marts_correct"]:
        print("dbt benchmark: the marts are WRONG (see above): its timings mean nothing")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
