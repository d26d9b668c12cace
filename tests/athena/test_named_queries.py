"""The analysts' Athena named queries (infra/analytics.yaml): Athena SQL that calls only Trino's
functions, over columns the marts have, and asking the dashboard's five questions.

Each query is transpiled to DuckDB and run on the local build of the sample lake, with
current_date pinned to the sample's last day so that its "last 30 days" filter holds data.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.athena.sql_checks import called_functions, parse_athena, to_duckdb, trino_function_names
from tests.infra.cfn import REPO_ROOT, load_template, resources_of_type
from tests.support.dbt import DbtProject

ANALYTICS_TEMPLATE = REPO_ROOT / "infra" / "analytics.yaml"


def named_queries() -> dict[str, str]:
    resources = resources_of_type(load_template(ANALYTICS_TEMPLATE), "AWS::Athena::NamedQuery")
    return {r["Properties"]["Name"]: r["Properties"]["QueryString"] for r in resources.values()}


def test_five_named_queries_in_the_stack_s_workgroup_and_database() -> None:
    resources = resources_of_type(load_template(ANALYTICS_TEMPLATE), "AWS::Athena::NamedQuery")
    assert len(resources) == 5
    for resource in resources.values():
        assert resource["Properties"]["WorkGroup"] == {"Ref": "ProjectName"}
        assert resource["Properties"]["Database"] == {"Ref": "GlueDatabaseName"}


@pytest.mark.parametrize("name", sorted(named_queries()))
def test_named_query_is_athena_sql_that_runs_on_the_marts(
    name: str, duckdb_reference: DbtProject
) -> None:
    sql = named_queries()[name]
    tree = parse_athena(sql)
    assert called_functions(tree, sql) <= trino_function_names()
    assert "event_date" in sql, "every query filters on the partition column"
    with duckdb.connect(str(duckdb_reference.warehouse), read_only=True) as connection:
        (last_day,) = connection.execute(
            "select max(event_date) from capacity_by_site"
        ).fetchone() or (None,)
        local = to_duckdb(sql).replace("CURRENT_DATE", f"DATE '{last_day}'")
        rows = connection.execute(local).fetchall()
    if "delivery_status" in sql:
        assert rows == [], "the sample lake has no delivery gap"
    else:
        assert rows, f"{name} returned nothing on the sample"
