"""The deployed pipeline on Athena's engine, offline: sample logs → ingest Lambdas → the
scheduled dbt task (dbt-athena unchanged, the stack's workgroup) → every model row checked.

Three states of one lake, each compared with the generator's ground truth to 1e-6:
1. a first build before the last hours' files arrived (the days those files do not touch);
2. an incremental run after the late files arrive (every row);
3. an incremental run after a corrected file that removes some slots and moves others to the
   day before (every row, ground truth re-aggregated from the corrected slot rows).
Then each mart, read back through the engine, goes to EXPORT/<mart>.csv.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.athena_e2e.conftest import SAMPLE_DAYS
from tests.athena_e2e.corrections import choose_correction, corrected_truth
from tests.athena_e2e.harness import MARTS, AthenaStack, DbtRun
from tests.e2e.ground_truth import GRAINS, assert_models_equal, read_ground_truth
from tests.support.dbt_models import documented_columns

pytestmark = pytest.mark.e2e

LATE_FROM_HOUR = 21  # the last day's files from this hour on (and after it) arrive late


def log_files(logs: Path) -> list[tuple[Path, str]]:
    return [(p, p.relative_to(logs).as_posix()) for p in sorted(logs.rglob("*")) if p.is_file()]


def is_late(key: str, last_day: dt.date) -> bool:
    year, month, day, hour = (int(part) for part in key.split("/")[:4])
    when = dt.date(year, month, day)
    return when > last_day or (when == last_day and hour >= LATE_FROM_HOUR)


def truth(sample: Path) -> dict[str, list[dict[str, str]]]:
    return {model: read_ground_truth(sample / "ground_truth" / f"{model}.csv") for model in GRAINS}


def compare(stack: AthenaStack, expected: dict[str, list[dict[str, str]]], where: str = "") -> None:
    assert_models_equal(expected, lambda model: stack.read(model, where))


@pytest.fixture(scope="module")
def days(sample: Path | None, sample_start: dt.date) -> tuple[dt.date, dt.date]:
    """The sample's first and last day (late ads of its last day are logged the day after)."""
    if sample is None:
        pytest.skip("SOURCE was given: no ground truth to compare with")
    return sample_start, sample_start + dt.timedelta(days=SAMPLE_DAYS - 1)


@pytest.fixture(scope="module")
def first_build(athena_stack: AthenaStack, sample: Path | None, days) -> DbtRun:
    athena_stack.upload_dimensions(sample / "dimensions")
    early = [f for f in log_files(sample / "logs") if not is_late(f[1], days[1])]
    athena_stack.upload_logs(early)
    athena_stack.run_ingest()
    return athena_stack.build()


@pytest.fixture(scope="module")
def incremental_build(athena_stack: AthenaStack, sample: Path, days, first_build) -> DbtRun:
    late = [f for f in log_files(sample / "logs") if is_late(f[1], days[1])]
    assert late, "the sample should have files after the late-arrival hour"
    athena_stack.upload_logs(late)
    athena_stack.run_ingest()
    return athena_stack.build()


@pytest.fixture(scope="module")
def correction(sample: Path, days) -> Any:
    stg = read_ground_truth(sample / "ground_truth" / "stg_freewheel__slots.csv")
    return choose_correction(sample / "logs", stg, days[1])


@pytest.fixture(scope="module")
def correction_build(
    athena_stack: AthenaStack, sample: Path, correction, incremental_build
) -> DbtRun:
    key = correction.file.relative_to(sample / "logs").as_posix()
    corrected = correction.file.with_name(correction.file.name + ".corrected")
    corrected.write_bytes(correction.content)
    athena_stack.upload_logs([(corrected, key)])  # same key, new content: a re-delivery
    athena_stack.run_ingest()
    return athena_stack.build()


def test_first_build_matches_ground_truth_for_the_days_it_has(
    athena_stack: AthenaStack, sample: Path, days, first_build: DbtRun
) -> None:
    expected = {
        model: [r for r in rows if r.get("event_date", days[1].isoformat()) < days[1].isoformat()]
        for model, rows in truth(sample).items()
    }
    compare(athena_stack, expected, f"where event_date < date '{days[1]}'")


def test_incremental_run_with_late_files_matches_ground_truth(
    athena_stack: AthenaStack, sample: Path, incremental_build: DbtRun
) -> None:
    compare(athena_stack, truth(sample))


def test_a_correction_that_removes_and_moves_slots_matches_ground_truth(
    athena_stack: AthenaStack, sample: Path, correction, correction_build: DbtRun
) -> None:
    expected = corrected_truth(truth(sample), correction)
    moved_to = {t[:10] for t in correction.moved.values()}
    assert len(expected["stg_freewheel__slots"]) == len(truth(sample)["stg_freewheel__slots"]) - 2
    assert moved_to, "the correction should move slots"
    compare(athena_stack, expected)


def test_marts_are_exported_as_read_back_through_the_engine(
    athena_stack: AthenaStack, correction_build: DbtRun, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("B2P_E2E_EXPORT") or tmp_path / "export")
    written = athena_stack.export(folder)
    assert [p.name for p in written] == [f"{m}.csv" for m in MARTS]
    for path in written:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) > 1 and lines[0].endswith("event_date"), path


def test_every_table_dbt_creates_lives_under_the_lake_s_dbt_prefix(
    athena_stack: AthenaStack, correction_build: DbtRun
) -> None:
    """With the stack as deployed (the dbt task's workgroup, its s3_data_dir): every table and
    partition in the models' database, and every object under them, is under s3://<lake>/dbt/
    (where no lifecycle rule of the template expires objects:
    tests/infra/test_template.py::test_no_lifecycle_rule_expires_the_dbt_tables)."""
    deployment = athena_stack.deployment
    glue = deployment.client("glue")
    lake_tables = {"v4_events", "sites", "site_sections", "series"}
    prefix = f"s3://{deployment.lake_bucket}/dbt/"
    misplaced, tables = [], 0
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=deployment.database):
        for table in page["TableList"]:
            if table["Name"] in lake_tables or table.get("TableType") == "VIRTUAL_VIEW":
                continue
            tables += 1
            locations = [table["StorageDescriptor"]["Location"]]
            partitions = glue.get_paginator("get_partitions").paginate(
                DatabaseName=deployment.database, TableName=table["Name"]
            )
            locations += [
                p["StorageDescriptor"]["Location"] for pg in partitions for p in pg["Partitions"]
            ]
            misplaced += [(table["Name"], loc) for loc in locations if not loc.startswith(prefix)]
    assert tables >= 10, "the seeds and the eight incremental models should be tables"
    assert misplaced == []


def test_a_day_partitioned_table_keeps_its_descriptions_and_window_in_glue(
    athena_stack: AthenaStack, correction_build: DbtRun
) -> None:
    """After incremental runs, day_partitions has put the model's YAML descriptions on its Glue
    table and columns (what BI tools show), and kept the window it recorded there."""
    table = athena_stack.deployment.client("glue").get_table(
        DatabaseName=athena_stack.deployment.database, Name="stg_freewheel__slots"
    )["Table"]
    assert table["Description"].startswith("One row per slot"), table.get("Description")
    assert table["Parameters"]["materialized"] == "day_partitions"
    assert table["Parameters"]["b2p.window_start"]
    columns = table["StorageDescriptor"]["Columns"]
    assert {c["Name"] for c in columns} <= set(documented_columns("stg_freewheel__slots"))
    assert [c["Name"] for c in columns if not c.get("Comment")] == []


@pytest.mark.parametrize("model", ["stg_freewheel__slots", "dq_freewheel__orphan_ads"])
def test_each_model_reads_its_window_of_the_lake_once(
    athena_stack: AthenaStack, incremental_build: DbtRun, model: str
) -> None:
    """Trino (Athena) does not materialise a CTE referenced twice: a model that reads its
    `events` CTE for slots and again for ads scans every partition of the window twice. In the
    statement that builds the model, each projected v4_events partition is planned once."""
    (statement,) = [
        q
        for q in athena_stack.queries(incremental_build)
        if q["node_id"] == f"model.bones2peaches.{model}"
        and q["substatement"] == "CREATE_TABLE_AS_SELECT"
    ]
    planned = statement["partitions_read"][f"{athena_stack.deployment.database}.v4_events"]
    assert planned, "the statement should read v4_events"
    assert len(planned) == len(set(planned)), (
        f"{model} scans the window {len(planned) // len(set(planned))} times"
    )


class Reader(threading.Thread):
    """Counts stg_freewheel__slots rows per day through the engine, again and again."""

    def __init__(self, stack: AthenaStack) -> None:
        super().__init__(daemon=True)
        self.stack, self.snapshots, self.errors = stack, [], []
        self.stop = threading.Event()

    def count(self) -> dict[str, int]:
        sql = (
            "select cast(event_date as varchar), count(*) from "
            f'"lake_reader"."{self.stack.deployment.database}"."stg_freewheel__slots" group by 1'
        )
        return dict(self.stack.trino.query(sql).rows)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.snapshots.append(self.count())
            except Exception as error:  # a reader's failure is a finding, not a crash
                self.errors.append(str(error)[:300])
            time.sleep(0.2)


def test_a_run_killed_mid_replace_then_rerun_never_shows_a_missing_or_doubled_day(
    athena_stack: AthenaStack, sample: Path, correction, correction_build: DbtRun
) -> None:
    """Killed while it repoints stg_freewheel__slots's days to their new files; a reader querying
    all along sees every day with exactly its rows; the rerun (after breaking the dead run's
    lock) ends in the same rows as a clean run."""
    reader = Reader(athena_stack)
    before = reader.count()
    athena_stack.standin.hold("`stg_freewheel__slots` partition (", "kill-point")
    reader.start()
    only_slots = ("--select", "stg_freewheel__slots")  # the model the reader reads
    killed = subprocess.Popen(
        athena_stack.task_command(*only_slots), env=athena_stack.task_env("dbt-killed"),
        cwd=athena_stack.work, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not any(h["reached"] for h in athena_stack.standin.holds()):
            assert killed.poll() is None and time.monotonic() < deadline, (
                "never reached the replace"
            )
            time.sleep(0.2)
    finally:  # killed where the hold stopped it, or if it never got there
        with contextlib.suppress(ProcessLookupError):
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        athena_stack.standin.release("kill-point")  # Athena finishes a dead client's query
    athena_stack.dbt("run-operation", "break_run_lock", "--target", "athena")
    athena_stack.build(*only_slots)
    reader.stop.set()
    reader.join(timeout=30)
    assert reader.errors == []
    assert len(reader.snapshots) > 10
    assert all(snapshot == before for snapshot in reader.snapshots)
    compare(athena_stack, corrected_truth(truth(sample), correction))
