"""Fixtures of the Athena conformance check: one moto_server, one sample lake, and the dbt
project compiled for Athena twice (first build, then incremental) and built on DuckDB once.

Everything is package-scoped: each dbt invocation costs seconds, and every test reads the same
compiled artefacts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.cli import main as b2p
from tests.athena import athena_dbt
from tests.athena.athena_dbt import AthenaDbtProject
from tests.support import moto
from tests.support.dbt import DbtProject

SAMPLE_START = dt.date(2026, 11, 1)
SAMPLE_DAYS = 2
# What the incremental branch's `max(event_date) - lookback_days` query returns (moto's Athena
# executes nothing): a day inside the sample, so the window holds some days and not others.
WINDOW_START = "2026-11-02"


@dataclass(frozen=True)
class IncrementalCompile:
    project: AthenaDbtProject
    queries: list[str]  # what the compile sent to Athena (the window queries)


@pytest.fixture(scope="package")
def athena_endpoint() -> Iterator[str]:
    """A moto_server of its own (other test packages reset the shared one), with boto3 in this
    process pointed at it for the package's duration."""
    with moto.running_moto_server() as endpoint, pytest.MonkeyPatch.context() as patch:
        for key, value in moto.aws_env(endpoint).items():
            patch.setenv(key, value)
        patch.delenv("AWS_PROFILE", raising=False)
        athena_dbt.create_lake_catalog()
        yield endpoint


@pytest.fixture(scope="package")
def first_build(athena_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> AthenaDbtProject:
    """`dbt docs generate` (compile + catalog) on Athena before any model exists."""
    work = tmp_path_factory.mktemp("athena-first-build")
    project = AthenaDbtProject(work=work, lake=work / "unused", endpoint=athena_endpoint)
    project.athena("docs", "generate")
    return project


@pytest.fixture(scope="package")
def incremental(
    first_build: AthenaDbtProject, athena_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> IncrementalCompile:
    """The same after a first `dbt run`: the incremental models exist in Glue, and each
    incremental_window_start query returns WINDOW_START."""
    incremental_models = athena_dbt.incremental_models(first_build.manifest())
    athena_dbt.create_model_tables(incremental_models.values())
    athena_dbt.queue_query_results(athena_endpoint, [WINDOW_START] * len(incremental_models))
    before = len(athena_dbt.athena_queries())
    work = tmp_path_factory.mktemp("athena-incremental")
    project = AthenaDbtProject(work=work, lake=work / "unused", endpoint=athena_endpoint)
    project.athena("docs", "generate")
    return IncrementalCompile(project=project, queries=athena_dbt.athena_queries()[before:])


@pytest.fixture(scope="package")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`b2p sample` logs ingested into a local lake, with the dimension snapshots."""
    root = tmp_path_factory.mktemp("athena-sample")
    lake = root / "lake"
    args = ["--start", SAMPLE_START.isoformat(), "--days", str(SAMPLE_DAYS), "--seed", "11"]
    assert b2p(["sample", "--out", str(root / "sample"), *args, "--lake", str(lake)]) == 0
    assert b2p(["ingest", "--source", str(root / "sample" / "logs"), "--lake", str(lake)]) == 0
    return lake


@pytest.fixture(scope="package")
def duckdb_reference(sample_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    """The models built by the local (DuckDB) target over the sample lake, plus its docs."""
    project = DbtProject(work=tmp_path_factory.mktemp("duckdb-reference"), lake=sample_lake)
    project.run("build", "--select", "resource_type:model", "resource_type:seed")
    project.run("docs", "generate")
    return project
