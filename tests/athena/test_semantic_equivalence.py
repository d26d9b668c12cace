"""The Athena SQL means what the DuckDB SQL means.

The Athena-compiled statements of every model are transpiled to DuckDB with sqlglot and run in a
scratch DuckDB whose relations carry the Athena names ("awsdatacatalog"."<database>"."<table>"):
the lake's Glue tables become views over the sample lake's Parquet files typed as in the Glue
DDL, the seeds are loaded as strings (as dbt-athena loads them with column_types string), and each
model is materialised in dependency order. Every row of staging and the marts must equal what the
local (DuckDB) target built from the same lake, to 1e-6.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.athena import athena_dbt
from tests.athena.athena_dbt import AthenaDbtProject
from tests.athena.conftest import WINDOW_START, IncrementalCompile
from tests.athena.sql_checks import parse_athena, to_duckdb
from tests.support.dbt import REPO, DbtProject
from tests.support.dbt_models import mart_names

TOLERANCE = 1e-6
# the slot table, every mart (models/marts) and the hourly deliveries, rebuilt by window; the
# orphan check (its window reaches one day further back, for its slots) and the delivery health
# (a table rebuilt whole each run) are compared after the full build only
COMPARED_INCREMENTALLY = [
    "stg_freewheel__slots",
    *mart_names(),
    "dq_freewheel__hourly_deliveries",
]
COMPARED_MODELS = [
    *COMPARED_INCREMENTALLY,
    "dq_freewheel__orphan_ads",
    "dq_freewheel__delivery_health",
]
DUCKDB_TYPES = {"string": "varchar", "int": "integer"}


def athena_name(database: str, table: str) -> str:
    return f'"{athena_dbt.CATALOG}"."{database}"."{table}"'


def glue_table_as_view(table_input: dict[str, Any], lake: Path) -> str:
    """A view with the Glue table's columns and types over the lake's files of that table."""
    name = table_input["Name"]
    columns = [*table_input["StorageDescriptor"]["Columns"], *table_input.get("PartitionKeys", [])]
    select = ", ".join(
        f'cast("{c["Name"]}" as {DUCKDB_TYPES.get(c["Type"], c["Type"])}) as "{c["Name"]}"'
        for c in columns
    )
    if table_input.get("PartitionKeys"):
        files = f"read_parquet('{lake}/{name}/*/*/*.parquet', hive_partitioning = true)"
    else:
        files = f"read_parquet('{lake}/dimensions/{name}/*.parquet')"
    return (
        f"create view {athena_name(athena_dbt.LAKE_DATABASE, name)} as select {select} from {files}"
    )


def dependency_order(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = athena_dbt.models(manifest)
    by_id = {node["unique_id"]: node for node in nodes.values()}
    ordered: list[dict[str, Any]] = []

    def visit(node: dict[str, Any]) -> None:
        if node in ordered:
            return
        for parent in node["depends_on"]["nodes"]:
            if parent in by_id:
                visit(by_id[parent])
        ordered.append(node)

    for node in nodes.values():
        visit(node)
    return ordered


def rows(connection: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    result = connection.execute(query)
    columns = [c[0] for c in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def sort_key(row: dict[str, Any]) -> tuple[str, ...]:
    # floats may differ in the last bits between engines: order by everything else
    return tuple(repr(v) for v in row.values() if not isinstance(v, float))


def same_value(expected: Any, actual: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=0, abs_tol=TOLERANCE)
    return bool(expected == actual)


def differences(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    if not expected:
        return ["the DuckDB target has no rows to compare"]
    if list(expected[0]) != (list(actual[0]) if actual else list(expected[0])):
        return [f"columns {list(actual[0])} instead of {list(expected[0])}"]
    if len(expected) != len(actual):
        return [f"{len(actual)} rows instead of {len(expected)}"]
    problems = []
    for want, got in zip(sorted(expected, key=sort_key), sorted(actual, key=sort_key), strict=True):
        for column, value in want.items():
            if not same_value(value, got[column]):
                problems.append(f"{column}: {got[column]!r} instead of {value!r} in {want}")
    return problems


@pytest.fixture(scope="module")
def reference(duckdb_reference: DbtProject) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(duckdb_reference.warehouse), read_only=True) as connection:
        yield connection


def reference_rows(
    reference: duckdb.DuckDBPyConnection, model: str, where: str = ""
) -> list[dict[str, Any]]:
    (schema,) = reference.execute(
        "select table_schema from information_schema.tables where table_name = ?", [model]
    ).fetchone() or (None,)
    assert schema, f"{model} is not in the DuckDB warehouse"
    return rows(reference, f'select * from "{schema}"."{model}" {where}')


@pytest.fixture(scope="module")
def athena_scratch(
    first_build: AthenaDbtProject, sample_lake: Path
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The first-build Athena SQL of every model, transpiled and materialised in DuckDB."""
    manifest = first_build.manifest()
    connection = duckdb.connect()
    connection.execute(f"attach ':memory:' as {athena_dbt.CATALOG}")
    for database in (athena_dbt.LAKE_DATABASE, athena_dbt.MODELS_DATABASE):
        connection.execute(f"create schema {athena_dbt.CATALOG}.{database}")
    for table_input in athena_dbt.template_glue_tables().values():
        connection.execute(glue_table_as_view(table_input, sample_lake))
    for node in manifest["nodes"].values():
        if node["resource_type"] == "seed":
            name = athena_name(athena_dbt.MODELS_DATABASE, node["name"])
            csv = REPO / node["original_file_path"]
            connection.execute(
                f"create table {name} as select * from read_csv('{csv}', all_varchar = true)"
            )
    for node in dependency_order(manifest):
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        name = athena_name(athena_dbt.MODELS_DATABASE, node["name"])
        connection.execute(f"create {kind} {name} as {to_duckdb(first_build.compiled_sql(node))}")
    yield connection
    connection.close()


@pytest.mark.parametrize("model", COMPARED_MODELS)
def test_full_build_on_athena_equals_duckdb(
    athena_scratch: duckdb.DuckDBPyConnection, reference: duckdb.DuckDBPyConnection, model: str
) -> None:
    expected = reference_rows(reference, model)
    actual = rows(athena_scratch, f"select * from {athena_name(athena_dbt.MODELS_DATABASE, model)}")
    problems = differences(expected, actual)
    assert not problems, f"{model}: {len(problems)} differences, e.g.\n" + "\n".join(problems[:10])


@pytest.mark.parametrize("model", COMPARED_INCREMENTALLY)
def test_incremental_batch_on_athena_equals_duckdb_days_of_the_window(
    incremental: IncrementalCompile,
    athena_scratch: duckdb.DuckDBPyConnection,
    reference: duckdb.DuckDBPyConnection,
    model: str,
) -> None:
    """insert_overwrite replaces the batch's event_date partitions: the batch must hold exactly
    the final rows of those days, late ads of earlier days' slots excluded."""
    node = athena_dbt.models(incremental.project.manifest())[model]
    batch = rows(athena_scratch, to_duckdb(incremental.project.compiled_sql(node)))
    window = reference_rows(reference, model, f"where event_date >= date '{WINDOW_START}'")
    before = reference_rows(reference, model, f"where event_date < date '{WINDOW_START}'")
    assert window and before, "the window should hold some days of the sample and not others"
    problems = differences(window, batch)
    assert not problems, f"{model}: {len(problems)} differences, e.g.\n" + "\n".join(problems[:10])


def test_window_query_returns_lookback_days_and_one_before_the_latest_day(
    incremental: IncrementalCompile,
    athena_scratch: duckdb.DuckDBPyConnection,
    reference: duckdb.DuckDBPyConnection,
) -> None:
    """incremental_window_start's query runs only at run time (moto answered it with a preset
    date), so its SQL is run here against the full-build staging table.

    sqlglot cannot transpile athena__date_add_days faithfully: date_add('day', n, <date>) becomes
    DuckDB's <date> + INTERVAL, a timestamp, where Trino keeps a date — the string would read
    '2026-10-31 00:00:00' instead of '2026-10-31'. to_duckdb restores Trino's typing from the
    relation schema, and the next test pins the Athena macro's own SQL."""
    latest = max(r["event_date"] for r in reference_rows(reference, "stg_freewheel__slots"))
    assert latest <= dt.date.today(), "the sample should lie in the past"
    assert window_query_value(incremental, athena_scratch) == expected_window_start(latest)


def window_query_value(
    incremental: IncrementalCompile,
    connection: duckdb.DuckDBPyConnection,
    table: str | None = None,
) -> str | None:
    """The stg_freewheel__slots window query run in DuckDB, optionally on another table."""
    partitions = athena_name(athena_dbt.MODELS_DATABASE, "stg_freewheel__slots$partitions")
    (query,) = [q for q in incremental.queries if partitions in q]
    # the "$partitions" table lists the table's event_date values: the table itself stands in
    query = query.replace(
        partitions, athena_name(athena_dbt.MODELS_DATABASE, "stg_freewheel__slots")
    )
    schema = athena_dbt.relation_schema(incremental.project.manifest())
    sql = to_duckdb(query, schema)
    if table is not None:
        sql = sql.replace(athena_name(athena_dbt.MODELS_DATABASE, "stg_freewheel__slots"), table)
        assert table in sql
    (value,) = connection.execute(sql).fetchone() or (None,)
    return value


def expected_window_start(anchor: dt.date) -> str:
    return (anchor - dt.timedelta(days=lookback_days() + 1)).isoformat()


@pytest.mark.parametrize(
    ("name", "event_dates"),
    [
        ("an empty model (a clean feed: no orphan ads)", []),
        ("one event dated years ahead", [dt.date(2026, 11, 1), dt.date(2036, 1, 1)]),
    ],
)
def test_window_query_is_bounded_by_today(
    incremental: IncrementalCompile, name: str, event_dates: list[dt.date]
) -> None:
    """The anchor is the latest event_date capped at today, and today when the table is empty:
    never an unbounded window (a full scan every run), never one frozen in the future."""
    with duckdb.connect() as connection:
        connection.execute("create table model_table (event_date date)")
        for day in event_dates:
            connection.execute("insert into model_table values (?)", [day])
        value = window_query_value(incremental, connection, "model_table")
    assert value == expected_window_start(dt.date.today()), name


def test_athena_window_query_is_trinos_date_add_on_the_capped_latest_day(
    incremental: IncrementalCompile,
) -> None:
    """athena__date_add_days, which sqlglot cannot transpile faithfully (see above), on its own:
    the window query is exactly Trino's date_add('day', -(lookback_days + 1), <anchor>), cast to
    varchar, over the model's "$partitions" metadata table (the table itself would read every
    day's files), where the anchor is max(event_date) capped at (and, on an empty table, equal
    to) current_date. Trino's date_add on a date returns a date, and a date cast to varchar is
    ISO yyyy-mm-dd, which the model inlines as date '<value>'."""
    anchor = "least(coalesce(max(event_date), current_date), current_date)"
    expected = parse_athena(
        f"select cast(date_add('day', -{lookback_days() + 1}, {anchor}) as varchar)"
        f" from {athena_name(athena_dbt.MODELS_DATABASE, 'stg_freewheel__slots$partitions')}"
    )
    (query,) = [q for q in incremental.queries if '"stg_freewheel__slots$partitions"' in q]
    assert parse_athena(query) == expected


def lookback_days() -> int:
    return int(yaml.safe_load((REPO / "dbt_project.yml").read_text())["vars"]["lookback_days"])
