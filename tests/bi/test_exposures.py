"""The dbt exposures say what the dashboard and the report read; checked against the bundle's
datasets and the report's relations, so a new chart over another mart cannot leave them stale.
Runs in `make test` (no browser)."""

from __future__ import annotations

import json

import pytest

from ingest import report_html
from tests.bi.expectations import bundle_relations
from tests.support.dbt import DbtProject


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("exposures")
    project = DbtProject(work=work, lake=work / "lake")
    project.run("parse")
    return json.loads((work / "target" / "manifest.json").read_text())


def exposure_models(manifest: dict, name: str) -> set[str]:
    exposure = manifest["exposures"][f"exposure.bones2peaches.{name}"]
    return {node.split(".")[-1] for node in exposure["depends_on"]["nodes"]}


def test_the_dashboard_exposure_lists_what_the_bundle_reads(manifest: dict) -> None:
    assert exposure_models(manifest, "ad_capacity_dashboard") == bundle_relations(), (
        "models/exposures.yml (ad_capacity_dashboard) and bi/bundle/datasets disagree"
    )


def test_the_report_exposure_lists_what_the_report_reads(manifest: dict) -> None:
    assert exposure_models(manifest, "capacity_html_report") == set(report_html.MART_NAMES), (
        "models/exposures.yml (capacity_html_report) and ingest/report_html.py disagree"
    )


def test_every_table_persists_its_docs_to_the_catalog(manifest: dict) -> None:
    """On Athena persist_docs writes descriptions into Glue (dbt-athena's persist_docs_to_glue),
    where BI tools show them, for every table; every column a model documents must therefore
    exist (dbt-athena validates it) and be described."""
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        # views keep Trino's "Presto View" comment (dbt_project.yml says why); tables persist
        persisted = node["config"]["materialized"] != "view"
        expected = {"relation": persisted, "columns": persisted}
        assert node["config"]["persist_docs"] == expected, node["name"]
        assert node["description"].strip(), f"{node['name']} has no description"
        undocumented = [c for c, column in node["columns"].items() if not column["description"]]
        assert undocumented == [], f"{node['name']}: {undocumented}"
