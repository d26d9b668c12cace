"""The browser tests' shared pieces: one demo warehouse (the `make demo` sample, ingested and
built) and one Superset over it for the whole session. The test modules are marked `browser`
(make bi-test), `trino` (make bi-test-trino) or `browser` and `bi_athena` (make bi-test-athena,
which make bi-test leaves out); make test runs none of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.cli import main as b2p
from tests.support.dbt import DbtProject
from tests.support.superset import Superset, running_superset


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    """What `make demo` builds: the default sample, ingested, every model built."""
    work = tmp_path_factory.mktemp("bi-demo")
    project = DbtProject(work=work, lake=work / "lake")
    sample = work / "sample"
    assert b2p(["sample", "--out", str(sample), "--lake", str(project.lake)]) == 0
    assert b2p(["ingest", "--source", str(sample / "logs"), "--lake", str(project.lake)]) == 0
    project.run("build", "--exclude-resource-type", "unit_test")
    return project


@pytest.fixture(scope="session")
def superset(
    demo_warehouse: DbtProject, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Superset]:
    home = tmp_path_factory.mktemp("superset-home")
    warehouse = {"B2P_BI_ENGINE": "duckdb", "B2P_DUCKDB_PATH": str(demo_warehouse.warehouse)}
    with running_superset(home, warehouse) as running:
        yield running


@pytest.fixture(scope="session")
def screenshots() -> Path:
    from tests.support.browser import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
