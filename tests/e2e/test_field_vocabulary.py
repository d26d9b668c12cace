"""The second vocabulary end to end: a delivery shaped like publishers' stored v4 tables, onboarded
the way the README says (`b2p inspect` writes the mapping, `b2p dimensions --from-files` reads the
companion name files, the house placements fill the seed), must give marts equal to its ground
truth, row for row, with zero rejected rows.

The sample is small (one build, no incremental scenario): the contract vocabulary's suite
(test_pipeline.py) covers incremental builds and corrections; this one covers the vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.cli import main as b2p
from ingest.logs.contract import load_aliases
from tests.e2e.ground_truth import assert_matches_ground_truth, read_ground_truth, read_relation
from tests.support import samples
from tests.support.dbt import DbtProject, project_copy
from tests.support.v4files import event_files, log_records, rejects

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("field_sample")
    return samples.field_sample(out, days=2, slots_per_hour=50, seed=7)


@pytest.fixture(scope="module")
def mapping(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mapping") / "feed.json"
    # exit 2: as delivered, the files would not ingest (no slot_id)
    assert b2p(["inspect", "--source", str(sample / "logs"), "--write-aliases", str(path)]) == 2
    return path


@pytest.fixture(scope="module")
def build(sample: Path, mapping: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    work = tmp_path_factory.mktemp("field_build")
    house = (sample / "house_placements.csv").read_text()
    project = DbtProject(
        work=work,
        lake=work / "lake",
        project=project_copy(work / "project", {"house_placements": house}),
    )
    source = str(sample / "logs")
    assert (
        b2p(
            [
                "ingest",
                "--source",
                source,
                "--lake",
                str(project.lake),
                "--column-aliases",
                str(mapping),
            ]
        )
        == 0
    )
    assert (
        b2p(["dimensions", "--lake", str(project.lake), "--from-files", str(sample / "names")]) == 0
    )
    project.run("build")
    return project


def test_inspect_proposes_the_mapping_the_delivery_needs(mapping: Path) -> None:
    written = load_aliases(mapping)
    assert written.aliases == {
        "max_duration": "max_slot_duration",
        "sales_channel_type": "sales_type",
        "global_slot_index": "slot_id",
    }


def test_the_mapped_delivery_ingests_with_zero_rejected_rows(build: DbtProject) -> None:
    records = log_records(build.lake)
    assert records and all(r["status"] == "ok" for r in records)
    assert sum(r["rows_rejected"] for r in records) == 0 and rejects(build.lake) == []
    assert sum(r["rows_read"] for r in records) == sum(r["rows_written"] for r in records)


def test_every_mart_row_equals_the_ground_truth(build: DbtProject, sample: Path) -> None:
    assert_matches_ground_truth(build, sample)


def test_orphan_ads_are_found_by_the_built_slot_key(build: DbtProject, sample: Path) -> None:
    expected = read_ground_truth(sample / "ground_truth" / "orphan_ads.csv")
    actual = read_relation(build.warehouse, "dq_freewheel__orphan_ads")
    assert sorted((r["transaction_id"], r["slot_id"]) for r in expected) == sorted(
        (str(r["transaction_id"]), str(r["slot_id"])) for r in actual
    )


def test_house_placements_matter(build: DbtProject, sample: Path) -> None:
    """The house ads are booked as Direct Sold: only the seed keeps them out of monetized."""
    house = [line for line in (sample / "house_placements.csv").read_text().split()[1:]]
    assert house
    rows = read_relation(build.warehouse, "stg_freewheel__v4_events")
    on_house = [r for r in rows if str(r["placement_id"]) in house]
    assert on_house and {r["sales_type"] for r in on_house} == {"Direct Sold"}


def test_as_delivered_every_file_is_quarantined_naming_the_fix(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    assert b2p(["ingest", "--source", str(sample / "logs"), "--lake", str(lake)]) == 2
    assert event_files(lake) == []
    reasons = [json.loads(p.read_text())["reason"] for p in lake.glob("_ingest/quarantine/*")]
    assert reasons and all("required column(s) slot_id missing" in r for r in reasons)
    assert all("b2p inspect" in r and "--column-aliases" in r for r in reasons)
