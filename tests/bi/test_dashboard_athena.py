"""The dashboard bundle over the marts dbt built on the offline Athena path (`make bi-test-athena`).

The default sample (what `make demo` generates) goes through the deployed stack as in
tests/athena_e2e: the AWS stand-in with the CloudFormation template's resources, the log files
into FreeWheel's bucket, the planner and worker Lambdas with their own roles, then
`dbt build --target athena` with the dbt task's environment and role against the stand-in's
Athena API, executed on Trino 476 over moto's S3 and Glue. Superset is then provisioned over the
Glue database dbt built the marts in (no copy, as `B2P_TRINO_COPY_MARTS=0`), twice:
- `trino`: Superset's Trino dialect straight to that Trino (the harness's reader catalog);
- `pyathena`: B2P_BI_ENGINE=athena, the production connection: PyAthena's awsathena+rest:// to
  the stand-in's Athena API (its endpoint_url), in the stack's analysts' workgroup.
Each time the dashboard is loaded in Chromium and every chart is held to the figures of the
DuckDB dashboard test and, for the capacity charts, to the generator's ground truth.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.athena_e2e.harness import READER_CATALOG, AthenaStack, DbtRun, running_athena_stack
from tests.bi import expectations
from tests.bi.dashboard import DashboardLoad, load_over
from tests.bi.test_dashboard import CHARTS
from tests.support.dbt import DbtProject
from tests.support.stack import ADMIN_KEY

pytestmark = [pytest.mark.browser, pytest.mark.bi_athena]

CONNECTIONS = ("trino", "pyathena")
REGION = "us-east-1"

SUPERSET_USER = "superset-athena-bi"  # Trino's query history tells its queries apart by it


@dataclass(frozen=True)
class Loaded:
    connection: str  # one of CONNECTIONS
    load: DashboardLoad
    first_query: int  # the stand-in's Athena queries while the dashboard page loaded
    last_query: int
    trino_queries_before: frozenset[str]  # Trino's query ids before the page opened


@pytest.fixture(scope="module")
def sample(demo_warehouse: DbtProject) -> Path:
    """The default sample the DuckDB dashboard test's warehouse was built from."""
    return demo_warehouse.work / "sample"


@pytest.fixture(scope="module")
def athena(
    sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AthenaStack, DbtRun]]:
    manifest = json.loads((sample / "sample_manifest.json").read_text(encoding="utf-8"))
    start = dt.date.fromisoformat(manifest["arguments"]["start"])
    work = tmp_path_factory.mktemp("athena-bi")
    with running_athena_stack(work, projection_start=start) as stack:
        stack.upload_dimensions(sample / "dimensions")
        logs = sample / "logs"
        stack.upload_logs(
            (path, path.relative_to(logs).as_posix())
            for path in sorted(logs.rglob("*"))
            if path.is_file()
        )
        stack.run_ingest()
        # the scheduled task's build (infra/scheduled_dbt.sh), without its freshness check: the
        # default sample is weeks old, which the check would rightly call stale
        build = stack.dbt("build", "--target", "athena", "--exclude-resource-type", "unit_test")
        yield stack, build


def warehouse_env(stack: AthenaStack, connection: str) -> dict[str, str]:
    """Superset's connection to the Athena path: `trino` (Superset's Trino dialect on the
    harness's reader catalog) or `pyathena` (B2P_BI_ENGINE=athena, as on AWS: PyAthena's
    awsathena+rest:// to the stand-in's Athena API, in the analysts' workgroup)."""
    database = stack.deployment.database
    if connection == "trino":
        return {
            "B2P_BI_ENGINE": "trino",
            "B2P_TRINO_HOST": stack.trino.host,
            "B2P_TRINO_PORT": str(stack.trino.port),
            "B2P_TRINO_CATALOG": READER_CATALOG,
            "B2P_TRINO_SCHEMA": database,
            "B2P_TRINO_USER": SUPERSET_USER,
            "B2P_TRINO_COPY_MARTS": "0",
        }
    return {
        "B2P_BI_ENGINE": "athena",
        "B2P_ATHENA_REGION": REGION,
        "B2P_ATHENA_ENDPOINT_URL": stack.standin.endpoint,
        "B2P_ATHENA_WORKGROUP": stack.deployment.stack.physical("AthenaWorkGroup"),
        "B2P_BI_SCHEMA": database,
        # boto3's chain, as on a Superset host (there, its role); the stack has no analyst role,
        # so the harness's own key: recorded by the stand-in, never refused
        "AWS_ACCESS_KEY_ID": ADMIN_KEY,
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


@pytest.fixture(scope="module", params=CONNECTIONS)
def loaded_on_athena(
    request: pytest.FixtureRequest,
    athena: tuple[AthenaStack, DbtRun],
    tmp_path_factory: pytest.TempPathFactory,
) -> Loaded:
    stack, _ = athena
    connection = request.param
    before: dict[str, object] = {}

    def mark() -> None:  # provisioning reads the tables too (column metadata): not counted
        before["query"] = stack.standin.query_count()
        before["trino"] = frozenset(trino_query_ids(stack))

    load = load_over(
        warehouse_env(stack, connection),
        tmp_path_factory.mktemp(f"superset-{connection}"),
        f"dashboard-athena-{connection}",
        before_load=mark,
    )
    print(f"\ndashboard over the Athena path ({connection}): charts loaded in {load.seconds:.1f} s")
    return Loaded(
        connection,
        load,
        before["query"],  # type: ignore[arg-type]
        stack.standin.query_count(),
        before["trino"],  # type: ignore[arg-type]
    )


def trino_query_ids(stack: AthenaStack) -> list[str]:
    return [row[0] for row in stack.trino.query("select query_id from system.runtime.queries").rows]


def test_every_chart_draws_data_on_the_athena_path(loaded_on_athena: Loaded) -> None:
    assert set(loaded_on_athena.load.charts) == CHARTS
    assert loaded_on_athena.load.problems() == []


@pytest.mark.parametrize("check", expectations.CHECKS, ids=lambda c: c.__name__[6:])
def test_chart_data_on_the_athena_path_equals_the_duckdb_marts(
    check: Callable[[DashboardLoad, DbtProject], None],
    loaded_on_athena: Loaded,
    demo_warehouse: DbtProject,
) -> None:
    check(loaded_on_athena.load, demo_warehouse)


@pytest.mark.parametrize("check", expectations.CAPACITY_CHECKS, ids=lambda c: c.__name__[6:])
def test_capacity_charts_on_the_athena_path_equal_the_ground_truth(
    check: Callable[[DashboardLoad, DbtProject], None],
    loaded_on_athena: Loaded,
    truth_warehouse: DbtProject,
) -> None:
    check(loaded_on_athena.load, truth_warehouse)


@pytest.fixture(scope="module")
def truth_warehouse(
    sample: Path, demo_warehouse: DbtProject, tmp_path_factory: pytest.TempPathFactory
) -> DbtProject:
    """The generator's ground truth loaded as marts, once for every check and connection."""
    return expectations.ground_truth_warehouse(
        sample, demo_warehouse, tmp_path_factory.mktemp("truth")
    )


def test_the_charts_read_the_tables_dbt_built_through_athena(
    athena: tuple[AthenaStack, DbtRun], loaded_on_athena: Loaded
) -> None:
    """Each table a dataset reads was created by a CTAS of this dbt run through the Athena API
    (the stand-in's query log), and the dashboard's queries read those tables: through Trino as
    Superset's user (trino), or through the Athena API in the analysts' workgroup (pyathena)."""
    stack, build = athena
    created = {
        query["node_id"].rsplit(".", 1)[-1]
        for query in stack.queries(build)
        if query["node_id"] and query["substatement"] == "CREATE_TABLE_AS_SELECT"
    }
    assert expectations.bundle_relations() <= created, expectations.bundle_relations() - created
    if loaded_on_athena.connection == "trino":
        sent = [
            sql
            for (query_id, sql) in stack.trino.query(
                "select query_id, query from system.runtime.queries "
                f"where \"user\" = '{SUPERSET_USER}' and state = 'FINISHED'"
            ).rows
            if query_id not in loaded_on_athena.trino_queries_before
        ]
    else:
        workgroup = stack.deployment.stack.physical("AthenaWorkGroup")
        queries = stack.standin.queries()[
            loaded_on_athena.first_query : loaded_on_athena.last_query
        ]
        assert queries, "Superset sent no query through the Athena API"
        assert {q["workgroup"] for q in queries} == {workgroup}
        assert {q["state"] for q in queries} == {"SUCCEEDED"}
        sent = [q["sql"] for q in queries]
    assert_read_every_dataset_table(sent, stack.deployment.database)


def assert_read_every_dataset_table(sent: list[str], database: str) -> None:
    # a chart's FROM (schema.table, or the virtual dataset's table in its schema), not the
    # column introspection of provision (information_schema)
    read = {
        table
        for table in sorted(expectations.bundle_relations())
        for sql in sent
        if re.search(rf'\bFROM\s+(?:"?{database}"?\.)?"?{table}\b', sql, re.IGNORECASE)
    }
    assert read == expectations.bundle_relations(), expectations.bundle_relations() - read
