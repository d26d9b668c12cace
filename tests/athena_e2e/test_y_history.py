"""A year of history on Athena's engine, on a deployment of its own:

1. 30 days in the lake: `b2p backfill` builds them, then a scheduled run (its data tests read);
2. the 335 older days arrive: `b2p backfill` builds them in chunks, then a scheduled run.

Every statement of the backfills stays under the workgroup's BytesScannedCutoffPerQuery (the
stand-in cancels any that scans more) and reads at most a chunk's days plus one on each side;
the scheduled runs' data tests read the same partitions and bytes at 30 and at 365 days.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.athena_e2e.harness import AthenaStack, running_athena_stack
from tests.support.dbt import REPO

pytestmark = pytest.mark.e2e

HISTORY_DAYS = 365
RECENT_DAYS = 30
CUTOFF = 10_000_000  # bytes: the workgroup's BytesScannedCutoffPerQuery here (its minimum)
MAX_DAYS = 90
SLOTS_PER_DAY = 12


def day_events(day: dt.date) -> pa.Table:
    """One hour (12:00) of a day: slots of each type with one ad each, names in the dimensions."""
    noon = dt.datetime.combine(day, dt.time(12))
    rows = []
    for n in range(SLOTS_PER_DAY):
        tx, start = f"{day:%Y%m%d}-{n}", noon + dt.timedelta(minutes=n)
        position = ("PREROLL", "MIDROLL", "OVERLAY")[n % 3]
        rows.append((tx, "slotImpression", start, position, 60.0, None, None))
        rows.append(
            (
                tx,
                "defaultImpression",
                start + dt.timedelta(seconds=5),
                position,
                None,
                30.0,
                "DIRECT",
            )
        )
    columns = list(zip(*rows, strict=True))
    count = len(rows)
    return pa.table(
        {
            "transaction_id": pa.array(columns[0], pa.string()),
            "event_name": pa.array(columns[1], pa.string()),
            "event_time": pa.array(columns[2], pa.timestamp("ms")),
            "slot_id": pa.array(["s1"] * count, pa.string()),
            "time_position_class": pa.array(columns[3], pa.string()),
            "site_id": pa.array([1] * count, pa.int64()),
            "site_section_id": pa.array([11] * count, pa.int64()),
            "series_id": pa.array([21] * count, pa.int64()),
            "video_asset_id": pa.array([None] * count, pa.int64()),
            "network_id": pa.array([7] * count, pa.int64()),
            "ad_id": pa.array([None] * count, pa.int64()),
            "creative_id": pa.array([None] * count, pa.int64()),
            "max_slot_duration": pa.array(columns[4], pa.float64()),
            "ad_duration": pa.array(columns[5], pa.float64()),
            "sales_type": pa.array(columns[6], pa.string()),
            "extra_columns": pa.array(["{}"] * count, pa.string()),
            "source_file": pa.array([f"synthetic/{day}.csv"] * count, pa.string()),
            "source_line": pa.array(range(2, count + 2), pa.int64()),
            "ingested_at": pa.array([noon] * count, pa.timestamp("ms")),
        }
    )


def put_parquet(stack: AthenaStack, key: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    stack.deployment.client("s3").put_object(
        Bucket=stack.deployment.lake_bucket, Key=key, Body=buffer.getvalue()
    )


def put_days(stack: AthenaStack, days: list[dt.date]) -> None:
    for day in days:
        put_parquet(
            stack, f"v4_events/event_date={day}/event_hour=12/synthetic.parquet", day_events(day)
        )


def put_dimensions(stack: AthenaStack) -> None:
    put_parquet(
        stack, "dimensions/sites/sites.parquet", pa.table({"site_id": [1], "site_name": ["one"]})
    )
    put_parquet(
        stack,
        "dimensions/site_sections/site_sections.parquet",
        pa.table({"site_section_id": [11], "site_section_name": ["eleven"], "site_id": [1]}),
    )
    put_parquet(
        stack,
        "dimensions/series/series.parquet",
        pa.table({"series_id": [21], "series_name": ["s"]}),
    )


INCREMENTAL = ("--select", "stg_freewheel__slots+", "dq_freewheel__orphan_ads")


def backfill(
    stack: AthenaStack, start: dt.date, end: dt.date, *select: str
) -> tuple[str, list[dict]]:
    first = stack.standin.query_count()
    env = dict(stack.dbt_env(), DBT_PROFILES_DIR=str(stack.profiles_dir))
    result = subprocess.run(
        [
            sys.executable, "-m", "ingest.cli", "backfill",
            "--start", start.isoformat(), "--end", end.isoformat(),
            "--lake", f"s3://{stack.deployment.lake_bucket}", "--max-days", str(MAX_DAYS),
            "--", "run", "--target", "athena", "--project-dir", str(REPO),
            "--profiles-dir", str(stack.profiles_dir),
            "--target-path", str(stack.work / "backfill" / "target"), *select,
        ],
        env=env, cwd=stack.work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout, stack.standin.queries()[first:]


@pytest.fixture(scope="module")
def year_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AthenaStack]:
    today = dt.date.today()
    work = tmp_path_factory.mktemp("athena-year")
    with running_athena_stack(
        work,
        projection_start=today - dt.timedelta(days=HISTORY_DAYS),
        overrides={"BytesScannedCutoffPerQuery": str(CUTOFF)},
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def history(year_stack: AthenaStack) -> dict[str, object]:
    stack, today = year_stack, dt.date.today()
    days = [today - dt.timedelta(days=n) for n in range(HISTORY_DAYS, 0, -1)]
    recent, older = days[-RECENT_DAYS:], days[:-RECENT_DAYS]
    put_dimensions(stack)
    put_days(stack, recent)
    stack.dbt("seed", "--target", "athena")
    plan_recent, backfill_recent = backfill(stack, recent[0], today)
    # a scheduled run (its models and their tests; the views and seeds are built)
    at_30 = stack.build(*INCREMENTAL)
    put_days(stack, older)
    plan_older, backfill_older = backfill(stack, older[0], recent[0], *INCREMENTAL)
    at_365 = stack.build(*INCREMENTAL)
    return {
        "plans": plan_recent + plan_older,
        "backfill": backfill_recent + backfill_older,
        "at_30": stack.queries(at_30),
        "at_365": stack.queries(at_365),
    }


def test_a_year_is_backfilled_in_chunks_under_the_cutoff_and_the_partition_limit(
    year_stack: AthenaStack, history: dict
) -> None:
    chunks = [line for line in history["plans"].splitlines() if "(end excluded)" in line]
    assert len(chunks) == 1 + 4, history["plans"]
    statements = history["backfill"]
    assert statements and all(q["state"] == "SUCCEEDED" for q in statements)
    assert max(q["data_scanned_bytes"] for q in statements) <= CUTOFF
    widest = max(
        len({p.split("/")[0] for p in partitions})
        for q in statements
        for partitions in q["partitions_read"].values()
    )
    assert widest <= MAX_DAYS + 2 < 100
    stg = year_stack.read("stg_freewheel__slots")
    assert len({r["event_date"] for r in stg}) == HISTORY_DAYS
    assert len(stg) == HISTORY_DAYS * SLOTS_PER_DAY


def test_scheduled_data_tests_read_the_same_at_30_and_365_days(history: dict) -> None:
    def reads(queries: list[dict]) -> dict[str, tuple[int, int]]:
        return {
            q["node_id"]: (
                sum(len(p) for p in q["partitions_read"].values()),
                q["data_scanned_bytes"],
            )
            for q in queries
            if (q["node_id"] or "").startswith("test.")
        }

    at_30, at_365 = reads(history["at_30"]), reads(history["at_365"])
    assert len(at_30) > 90 and set(at_30) == set(at_365)
    partitions_30 = sum(p for p, _ in at_30.values())
    partitions_365 = sum(p for p, _ in at_365.values())
    bytes_30 = sum(b for _, b in at_30.values())
    bytes_365 = sum(b for _, b in at_365.values())
    print(
        f"\ndata tests of a scheduled run: {partitions_30} partitions / {bytes_30} B at 30 days, "
        f"{partitions_365} partitions / {bytes_365} B at {HISTORY_DAYS} days"
    )
    assert partitions_365 == partitions_30
    assert bytes_365 <= bytes_30 * 1.1


def test_a_scheduled_run_reads_the_same_at_30_and_365_days(history: dict) -> None:
    """Issue 14: the whole incremental run (every model and data test it runs), not only its
    tests: the partitions and bytes it reads depend on the window, not on the history. The one
    read that grows is the window's anchor, each model's "$partitions" metadata table: one row
    per day built, a few bytes each, never a data file."""

    def reads(queries: list[dict]) -> dict[str, tuple[int, int]]:
        totals: dict[str, tuple[int, int]] = {}
        for q in queries:
            kind = (q["node_id"] or "other.").split(".")[0]
            if is_metadata(q):
                kind = "metadata"
            partitions, scanned = totals.get(kind, (0, 0))
            totals[kind] = (
                partitions + sum(len(p) for p in q["partitions_read"].values()),
                scanned + q["data_scanned_bytes"],
            )
        return totals

    at_30, at_365 = reads(history["at_30"]), reads(history["at_365"])
    print(
        "\nscheduled run (partitions, bytes) by node type: "
        f"{at_30} at 30 days, {at_365} at {HISTORY_DAYS} days"
    )
    assert at_30["model"][0] > 0
    assert at_365["model"][0] == at_30["model"][0]
    assert at_365["model"][1] <= at_30["model"][1] * 1.1
    assert sum(p for p, _ in at_365.values()) == sum(p for p, _ in at_30.values())
    # the anchors: at most 64 bytes for each day a model table gained (a partition's row)
    anchors = [q for q in history["at_365"] if is_metadata(q)]
    gained = (HISTORY_DAYS - RECENT_DAYS) * len(anchors)
    assert at_365["metadata"][1] - at_30["metadata"][1] <= 64 * gained


def is_metadata(query: dict) -> bool:
    return "$partitions" in query["sql"]


def test_a_backfill_refuses_days_the_projection_does_not_cover(year_stack: AthenaStack) -> None:
    """Defect 6c: partition projection starts at ProjectionStartDate; older files are invisible
    to Athena, silently. The backfill names them and says what to change."""
    before = dt.date.today() - dt.timedelta(days=HISTORY_DAYS + 3)
    put_days(year_stack, [before])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "backfill", "--start", str(before),
             "--end", str(dt.date.today()), "--lake", f"s3://{year_stack.deployment.lake_bucket}",
             "--dry-run"],
            env=year_stack.dbt_env(), capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        year_stack.deployment.client("s3").delete_object(
            Bucket=year_stack.deployment.lake_bucket,
            Key=f"v4_events/event_date={before}/event_hour=12/synthetic.parquet",
        )
    assert result.returncode == 1
    assert f"{before}" in result.stderr and "ProjectionStartDate" in result.stderr
    assert "Traceback" not in result.stderr
