"""The whole local pipeline: sample logs -> b2p ingest -> dbt build -> every mart row checked.

Two scenarios share one generated sample:
- a full build over all files;
- an incremental one: the first day's files are ingested and built, then the rest, then an
  incremental build. Ads of slots near midnight sit in the next day's files, so this proves the
  slot/ad join does not stop at a file, partition or incremental-run boundary.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from ingest.cli import main as b2p
from tests.e2e.ground_truth import GRAINS, differences, read_ground_truth, read_relation
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


def assert_matches_ground_truth(project: DbtProject, sample: Path) -> None:
    report = []
    for model, key in GRAINS.items():
        expected = read_ground_truth(sample / "ground_truth" / f"{model}.csv")
        assert expected, f"ground truth for {model} is empty"
        problems = differences(expected, read_relation(project.warehouse, model), key)
        if problems:
            report.append(
                f"{model}: {len(problems)} problems, e.g.\n  " + "\n  ".join(problems[:10])
            )
    assert not report, "\n".join(report)


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
