"""dbt benchmark: 30 days of sample data on DuckDB — full build, one-hour incremental, floor.

    python -m benchmarks.dbt_bench [--days 30] [--slots-per-hour 400]

1. `b2p sample` writes the days (cached under .bench/ while the arguments are unchanged); the
   last hour's log files are held back and everything else is ingested into a fresh lake;
2. `dbt build` on an empty warehouse: the full build (seeds, every model, every data test);
3. the held-back hour is ingested and `dbt build` runs again: the incremental build, which
   rebuilds `lookback_days` (3) + 1 days of staging and marts;
4. the same incremental with `--vars '{lookback_days: 1}'` on a copy of the warehouse: what a
   window computed from the days the new files actually touched would cost (the touched day
   and the day before it, for slots that started before midnight with ads after it);
5. `marts_by_hand.sql` in one DuckDB process: the six marts with no dbt around them — the floor.
   Its marts are compared with dbt's (row counts and metric sums), so the floor computes the
   same thing.

Also timed: `dbt ls` (dbt's fixed cost: start, parse, no query) to show how much of a small
incremental run is dbt itself. Each step is timed as a whole process, medians over the
repetitions for the builds that can be repeated. Writes `benchmarks/results/dbt.json`.
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
from pathlib import Path

from benchmarks.machine import machine_info
from ingest.logs.contract import CONTRACT
from tests.support.dbt_models import mart_names

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / ".bench"
BIN = Path(sys.executable).parent
MARTS = mart_names()
METRICS = ("slot_impressions", "ad_impressions", "capacity_seconds", "monetized_seconds")


def timed(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    clock = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - clock
    if done.returncode not in (0, 2):  # b2p ingest: 2 = rows rejected (the sample has some)
        raise RuntimeError(f"{command[:3]} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return round(seconds, 2)


def make_sample(days: int, slots_per_hour: int) -> Path:
    folder = CACHE / f"dbt-sample-{days}d-{slots_per_hour}sph"
    if (folder / "sample_manifest.json").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    command = [str(BIN / "b2p"), "sample", "--out", str(folder), "--days", str(days)]
    command += ["--slots-per-hour", str(slots_per_hour)]
    timed(command, dict(os.environ))
    return folder


def split_last_hour(sample: Path, work: Path) -> tuple[Path, Path]:
    """Symlinked source folders: every log file but the last hour's, and the last hour's."""
    logs = sorted((sample / "logs").rglob("*.csv.gz"))
    hours = sorted({path.parent for path in logs})
    last = hours[-1]
    earlier, latest = work / "source_earlier", work / "source_last_hour"
    for path in logs:
        target = (latest if path.parent == last else earlier) / path.relative_to(sample / "logs")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path.resolve())
    return earlier, latest


class Warehouse:
    """One lake + DuckDB warehouse + dbt scratch folders, and the commands that run on them."""

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

    def dbt(self, *args: str) -> float:
        command = [str(BIN / "dbt"), "--no-use-colors", *args, "--project-dir", str(ROOT)]
        command += ["--target-path", str(self.work / "target"), "--log-path", str(self.work)]
        return timed(command, self.env)

    def ingest(self, source: Path) -> float:
        command = [str(BIN / "b2p"), "ingest", "--source", str(source), "--lake", str(self.lake)]
        return timed(command, self.env)

    def copy_to(self, work: Path) -> Warehouse:
        work.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.path, work / "warehouse.duckdb")
        return Warehouse(work, self.lake)


def run_by_hand(lake: Path, database: Path) -> float:
    columns = ", ".join(column.name for column in CONTRACT)
    script = (
        (ROOT / "benchmarks" / "marts_by_hand.sql")
        .read_text()
        .replace("{lake}", str(lake))
        .replace("{contract_columns}", columns)
    )
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute(sys.stdin.read())"
    clock = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(database)], input=script, text=True, check=True)
    return round(time.perf_counter() - clock, 2)


def compare_marts(warehouse: Path, by_hand: Path) -> dict[str, bool]:
    """Per mart: do dbt's and the hand-written query's rows and metric sums agree?"""
    import duckdb

    connection = duckdb.connect(str(warehouse), read_only=True)
    connection.execute(f"attach '{by_hand}' as hand (read_only)")
    sums = ", ".join(f"round(sum({metric}), 3)" for metric in METRICS)
    agree: dict[str, bool] = {}
    for mart in MARTS:
        schema = connection.execute(
            "select table_schema from information_schema.tables where table_name = ? "
            "and table_catalog = current_database()",
            [mart],
        ).fetchone()
        ours = connection.execute(f"select count(*), {sums} from {schema[0]}.{mart}").fetchone()
        theirs = connection.execute(f"select count(*), {sums} from hand.hand_{mart}").fetchone()
        agree[mart] = ours == theirs
    return agree


def run_benchmark(days: int, slots_per_hour: int, repetitions: int) -> dict[str, object]:
    sample = make_sample(days, slots_per_hour)
    full: list[float] = []
    incremental: list[float] = []
    touched_only: list[float] = []
    with tempfile.TemporaryDirectory(prefix="b2p-dbt-bench-") as folder:
        scratch = Path(folder)
        earlier, last_hour = split_last_hour(sample, scratch)
        for repetition in range(repetitions):
            work = scratch / f"run{repetition}"
            lake = work / "lake"
            shutil.copytree(sample / "dimensions", lake / "dimensions")
            warehouse = Warehouse(work, lake)
            ingest_seconds = warehouse.ingest(earlier)
            full.append(warehouse.dbt("build"))
            before_hour = warehouse.copy_to(work / "touched_only")
            warehouse.ingest(last_hour)
            incremental.append(warehouse.dbt("build"))
            touched_only.append(before_hour.dbt("build", "--vars", "{lookback_days: 1}"))
            print(
                f"  dbt run {repetition + 1}: full {full[-1]} s, incremental {incremental[-1]} s,"
                f" touched-day window {touched_only[-1]} s",
                flush=True,
            )
        dbt_ls = warehouse.dbt("ls", "--resource-type", "model")
        by_hand = [run_by_hand(lake, scratch / f"hand{index}.duckdb") for index in range(2)]
        agree = compare_marts(warehouse.path, scratch / "hand0.duckdb")
        lake_mb = sum(path.stat().st_size for path in lake.rglob("*.parquet")) / 1e6
        events = _count_events(lake)
    full_median = statistics.median(full)
    return {
        "benchmark": "dbt",
        "machine": machine_info(),
        "data": {
            "days": days,
            "slots_per_hour": slots_per_hour,
            "events": events,
            "lake_parquet_mb": round(lake_mb, 1),
            "ingest_seconds": ingest_seconds,
        },
        "repetitions": repetitions,
        "full_build_seconds": full_median,
        "incremental_one_hour_seconds": statistics.median(incremental),
        "incremental_touched_day_window_seconds": statistics.median(touched_only),
        "hand_written_query_seconds": statistics.median(by_hand),
        "dbt_ls_seconds": dbt_ls,
        "full_over_hand_written": round(full_median / statistics.median(by_hand), 2),
        "incremental_over_full": round(statistics.median(incremental) / full_median, 3),
        "touched_day_window_over_full": round(statistics.median(touched_only) / full_median, 3),
        "marts_agree_with_hand_written": agree,
        "runs": {"full": full, "incremental": incremental, "touched_day_window": touched_only},
    }


def _count_events(lake: Path) -> int:
    import pyarrow.parquet as pq

    return sum(
        pq.ParquetFile(path).metadata.num_rows for path in lake.rglob("v4_events/**/*.parquet")
    )


def format_table(result: dict) -> str:
    data = result["data"]
    lines = [
        f"dbt on DuckDB: {data['days']} days, {data['events']:,} events "
        f"({data['lake_parquet_mb']} MB Parquet), median of {result['repetitions']} runs",
        f"{'step':48s} {'seconds':>8s} {'ratio':>22s}",
        f"{'hand-written DuckDB query (floor)':48s} {result['hand_written_query_seconds']:8.2f}",
        f"{'dbt build, full':48s} {result['full_build_seconds']:8.2f} "
        f"{result['full_over_hand_written']:>10} x floor",
        f"{'dbt build, incremental after one hour':48s} "
        f"{result['incremental_one_hour_seconds']:8.2f} "
        f"{result['incremental_over_full']:>10} x full",
        f"{'  same, window = touched day and the one before':48s} "
        f"{result['incremental_touched_day_window_seconds']:8.2f} "
        f"{result['touched_day_window_over_full']:>10} x full",
        f"{'dbt ls (dbt start + parse, no query)':48s} {result['dbt_ls_seconds']:8.2f}",
        "marts equal to the hand-written ones: "
        + ", ".join(
            f"{name} {'yes' if ok else 'NO'}"
            for name, ok in result["marts_agree_with_hand_written"].items()
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--slots-per-hour", type=int, default=400)
    parser.add_argument("--repetitions", type=int, default=2)
    args = parser.parse_args(argv)
    result = run_benchmark(args.days, args.slots_per_hour, args.repetitions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dbt.json").write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"written to {RESULTS / 'dbt.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
