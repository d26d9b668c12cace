"""The whole local pipeline: sample logs -> b2p ingest -> dbt build -> every mart row checked.

Two scenarios share one generated sample:
- a full build over all files;
- an incremental one: the first day's files are ingested and built, then the rest, then an
  incremental build. Ads of slots near midnight sit in the next day's files, so this proves the
  slot/ad join does not stop at a file, partition or incremental-run boundary.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from pathlib import Path

import duckdb
import pytest

from ingest.cli import main as b2p
from ingest.logs.contract import CONTRACT, PARTITIONS
from tests.e2e.ground_truth import (
    GRAINS,
    assert_matches_ground_truth,
    read_ground_truth,
    read_relation,
)
from tests.support.dbt import DbtProject

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    assert b2p(["sample", "--out", str(out), "--seed", "7"]) == 0
    return out


def ingest(source: Path, lake: Path) -> None:
    assert b2p(["ingest", "--source", str(source), "--lake", str(lake)]) == 0


def copy_dimensions(sample: Path, lake: Path) -> None:
    shutil.copytree(sample / "dimensions", lake / "dimensions", dirs_exist_ok=True)


@pytest.fixture(scope="module")
def full_build(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    work = tmp_path_factory.mktemp("full")
    project = DbtProject(work=work, lake=work / "lake")
    ingest(sample / "logs", project.lake)
    copy_dimensions(sample, project.lake)
    project.run("build")
    return project


def test_full_build_matches_ground_truth_row_for_row(full_build: DbtProject, sample: Path) -> None:
    assert_matches_ground_truth(full_build, sample)


def test_the_sample_s_ground_truth_covers_every_mart(sample: Path) -> None:
    written = {path.stem for path in (sample / "ground_truth").glob("*.csv")}
    missing = set(GRAINS) - written
    assert not missing, f"ingest/sample/truth.py computes no ground truth for {sorted(missing)}"


def test_the_staging_view_has_the_contract_s_columns(full_build: DbtProject) -> None:
    """stg_freewheel__v4_events renames and casts each contract column by hand: a column added to
    the contract (ingest/logs/contract.py) must reach it."""
    with duckdb.connect(str(full_build.warehouse), read_only=True) as connection:
        built = [
            row[0] for row in connection.execute("describe stg_freewheel__v4_events").fetchall()
        ]
    expected = [column.name for column in CONTRACT] + [p.name for p in PARTITIONS]
    missing = [name for name in expected if name not in built]
    extra = [name for name in built if name not in expected]
    assert not missing and not extra, (
        f"models/staging/stg_freewheel__v4_events.sql is out of date with the log contract: "
        f"missing {missing}, extra {extra}"
    )


def test_orphan_ads_are_reported_not_counted(full_build: DbtProject, sample: Path) -> None:
    expected = read_ground_truth(sample / "ground_truth" / "orphan_ads.csv")
    assert expected, "the sample should contain orphan ads"
    actual = read_relation(full_build.warehouse, "dq_freewheel__orphan_ads")
    expected_keys = sorted((r["transaction_id"], r["slot_id"]) for r in expected)
    actual_keys = sorted((str(r["transaction_id"]), str(r["slot_id"])) for r in actual)
    assert actual_keys == expected_keys


def test_rebuild_is_idempotent(full_build: DbtProject, sample: Path) -> None:
    """A second (incremental) build over the same lake changes nothing."""
    full_build.run("build")
    assert_matches_ground_truth(full_build, sample)


def test_incremental_build_with_late_files_matches_ground_truth(
    sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("incremental")
    project = DbtProject(work=work, lake=work / "lake")
    logs = sorted(p for p in (sample / "logs").rglob("*") if p.is_file())
    first_day = logs[0].relative_to(sample / "logs").parts[:3]  # YYYY/MM/DD
    early, late = work / "early", work / "late"
    for path in logs:
        relative = path.relative_to(sample / "logs")
        target = (early if relative.parts[:3] == first_day else late) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    assert any(early.rglob("*")) and any(late.rglob("*"))

    copy_dimensions(sample, project.lake)
    ingest(early, project.lake)
    project.run("build")
    ingest(late, project.lake)
    project.run("build")  # incremental: only the lookback window is reprocessed
    assert_matches_ground_truth(project, sample)


def test_a_missing_dimension_fails_the_build_instead_of_emptying_marts(
    sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("no_series")
    project = DbtProject(work=work, lake=work / "lake")
    ingest(sample / "logs", project.lake)
    copy_dimensions(sample, project.lake)
    shutil.rmtree(project.lake / "dimensions" / "series")

    result = project.run("build", "--select", "+capacity_by_series", check=False)

    assert result.returncode != 0
    assert "dimensions/series/series.parquet" in result.stdout
    assert " ERROR=1 " in result.stdout  # the series view, nothing else
    built = table_names(project.warehouse)
    assert "capacity_by_series" not in built  # skipped, not built empty
    assert "stg_freewheel__slots" in built  # what does not need the names still builds


def table_names(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute("select table_name from information_schema.tables").fetchall()
    return {name for (name,) in rows}


# ---- incremental corrections, on small hand-written log files

HEADER = [column.name for column in CONTRACT]


def slot(transaction: str, event_time: str, seconds: int, position: str = "PREROLL") -> dict:
    return {
        "transaction_id": transaction,
        "event_name": "slotImpression",
        "event_time": event_time,
        "slot_id": "s1",
        "time_position_class": position,
        "site_id": "1",
        "max_slot_duration": str(seconds),
    }


def ad(transaction: str, event_time: str, seconds: int, position: str = "PREROLL") -> dict:
    return {
        "transaction_id": transaction,
        "event_name": "defaultImpression",
        "event_time": event_time,
        "slot_id": "s1",
        "time_position_class": position,
        "site_id": "1",
        "ad_id": "7",
        "ad_duration": str(seconds),
        "sales_type": "DIRECT",
    }


def write_log(path: Path, records: list[dict]) -> None:
    """A gzip CSV with the contract header; a rewrite is a re-delivery (new size/mtime)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.getvalue().encode()))


def small_project(work: Path, sample: Path) -> DbtProject:
    project = DbtProject(work=work, lake=work / "lake")
    copy_dimensions(sample, project.lake)
    return project


def query(project: DbtProject, sql: str) -> list[tuple]:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_a_correction_that_empties_a_day_leaves_no_stale_rows(
    sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A re-delivered file moves a slot from 2026-10-11 to 2026-10-10 and so empties 10-11. The
    batch has no row of 10-11, which delete+insert / insert_overwrite would leave as it was."""
    work = tmp_path_factory.mktemp("correction")
    project = small_project(work, sample)
    source = work / "source"
    corrected = source / "2026" / "10" / "10" / "a.csv.gz"
    write_log(
        corrected,
        [slot("t1", "2026-10-10 10:00:00", 30), slot("t2", "2026-10-11 10:00:00", 60)],
    )
    write_log(source / "2026" / "10" / "12" / "b.csv.gz", [slot("t3", "2026-10-12 10:00:00", 90)])
    ingest(source, project.lake)
    project.run("build")

    # the correction: t2 started the day before
    write_log(
        corrected,
        [slot("t1", "2026-10-10 10:00:00", 30), slot("t2", "2026-10-10 11:00:00", 60)],
    )
    ingest(source, project.lake)
    project.run("build")  # incremental; its tests (slot grain, reconciliation) must pass

    slots = query(
        project,
        "select transaction_id, cast(event_date as varchar), capacity_seconds"
        " from stg_freewheel__slots order by 1",
    )
    assert slots == [("t1", "2026-10-10", 30), ("t2", "2026-10-10", 60), ("t3", "2026-10-12", 90)]
    preroll = query(
        project,
        "select cast(event_date as varchar), event_hour, slot_impressions, capacity_seconds"
        " from capacity_preroll order by 1, 2",
    )
    assert preroll == [
        ("2026-10-10", 10, 1, 30),
        ("2026-10-10", 11, 1, 60),
        ("2026-10-12", 10, 1, 90),
    ]
    by_site = query(
        project,
        "select cast(event_date as varchar), slot_impressions from capacity_by_site order by 1",
    )
    assert by_site == [("2026-10-10", 2), ("2026-10-12", 1)]


def test_a_late_ad_after_midnight_of_the_window_s_first_day_joins_its_slot(
    sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The latest built day is 10-14 and lookback_days 3: late data can reach 10-11. An ad logged
    at 10-11 00:00:10 belongs to a slot of 10-10 23:59:50, which must be rebuilt with it."""
    work = tmp_path_factory.mktemp("late_ad")
    project = small_project(work, sample)
    early, late = work / "early", work / "late"
    write_log(
        early / "a.csv.gz",
        [
            slot("t1", "2026-10-10 23:59:50", 60, "MIDROLL"),
            slot("t2", "2026-10-14 09:00:00", 30, "MIDROLL"),
        ],
    )
    ingest(early, project.lake)
    project.run("build")

    write_log(late / "b.csv.gz", [ad("t1", "2026-10-11 00:00:10", 45, "MIDROLL")])
    ingest(late, project.lake)
    project.run("build")

    slots = query(
        project,
        "select transaction_id, cast(event_date as varchar), ad_impressions, delivered_seconds,"
        " monetized_seconds, unsold_seconds from stg_freewheel__slots order by 1",
    )
    assert slots == [("t1", "2026-10-10", 1, 45, 45, 15), ("t2", "2026-10-14", 0, 0, 0, 30)]
    midroll = query(
        project,
        "select cast(event_date as varchar), event_hour, ad_impressions, monetized_seconds"
        " from capacity_midroll order by 1, 2",
    )
    assert midroll == [("2026-10-10", 23, 1, 45), ("2026-10-14", 9, 0, 0)]
    assert query(project, "select count(*) from dq_freewheel__orphan_ads") == [(0,)]


def test_scheduled_data_tests_read_only_the_window_the_run_rebuilt(
    sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 14: on DuckDB too, a run's data tests read only the days each incremental model
    rebuilt (recorded in b2p_tested_windows by its pre-hook); `test_scope: full` reads all."""
    work = tmp_path_factory.mktemp("tested_window")
    project = DbtProject(work=work, lake=work / "lake")
    ingest(sample / "logs", project.lake)
    copy_dimensions(sample, project.lake)
    scheduled = ("--exclude-resource-type", "unit_test", "--select", "stg_freewheel__slots")
    project.run(
        "build", "--exclude-resource-type", "unit_test", "--select", "+stg_freewheel__slots"
    )
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        first, last = connection.execute(
            "select min(event_date), max(event_date) from stg_freewheel__slots"
        ).fetchone()
    assert first < last
    project.run("build", *scheduled, "--vars", f"{{window_start: {last}}}")

    def duplicate_a_slot_of(day: object) -> None:
        with duckdb.connect(str(project.warehouse)) as connection:
            recorded = connection.execute(
                "select window_start, window_end from b2p_tested_windows"
                " where relation_name = 'stg_freewheel__slots'"
            ).fetchall()
            assert recorded == [(last, None)]
            connection.execute(
                "insert into stg_freewheel__slots"
                " select * from stg_freewheel__slots where event_date = ? limit 1",
                [day],
            )

    duplicate_a_slot_of(first)  # outside the window
    assert project.run("test", *scheduled).returncode == 0
    full = project.run("test", *scheduled, "--vars", "{test_scope: full}", check=False)
    assert full.returncode != 0
    assert "unique_combination_of_columns_stg_freewheel__slots" in full.stdout
    duplicate_a_slot_of(last)  # inside it
    windowed = project.run("test", *scheduled, check=False)
    assert windowed.returncode != 0
    assert "unique_combination_of_columns_stg_freewheel__slots" in windowed.stdout
