"""The same dashboard bundle over Trino, Athena engine v3's engine (`make bi-test-trino`).

Needs a Trino at B2P_TRINO_HOST:B2P_TRINO_PORT with a catalog B2P_TRINO_CATALOG that can create
tables (the offline Athena harness's Hive-on-S3 catalog, with B2P_TRINO_SCHEMA_LOCATION, or a
memory catalog). The test copies the marts of the demo warehouse into B2P_TRINO_SCHEMA (default
b2p_bi) through Trino (or, with B2P_TRINO_COPY_MARTS=0, uses marts already there), points
Superset at it with the trino:// dialect (B2P_BI_ENGINE=trino, the same variables), loads the
dashboard in Chromium and checks it exactly as over DuckDB: every chart draws data and equals the
marts. (This checks the engine, the SQL the bundle sends and Superset's Trino dialect; PyAthena's
awsathena+rest:// over the offline Athena path is make bi-test-athena's.)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import duckdb
import pytest

from tests.bi import expectations
from tests.bi.dashboard import DashboardLoad, load_over
from tests.support.dbt import DbtProject

pytestmark = pytest.mark.trino

TRINO_TYPES = {
    "VARCHAR": "varchar",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP": "timestamp(6)",
    "TIMESTAMP WITH TIME ZONE": "timestamp(6) with time zone",
}


def trino_settings() -> dict[str, str]:
    missing = [
        v
        for v in ("B2P_TRINO_HOST", "B2P_TRINO_PORT", "B2P_TRINO_CATALOG")
        if not os.environ.get(v)
    ]
    if missing:
        raise AssertionError(
            f"make bi-test-trino needs {', '.join(missing)}: a Trino to run against "
            "(the offline Athena harness starts one; see bi/README.md)"
        )
    return {
        "B2P_BI_ENGINE": "trino",
        "B2P_TRINO_HOST": os.environ["B2P_TRINO_HOST"],
        "B2P_TRINO_PORT": os.environ["B2P_TRINO_PORT"],
        "B2P_TRINO_CATALOG": os.environ["B2P_TRINO_CATALOG"],
        "B2P_TRINO_SCHEMA": os.environ.get("B2P_TRINO_SCHEMA", "b2p_bi"),
        "B2P_TRINO_USER": os.environ.get("B2P_TRINO_USER", "superset"),
    }


def literal(value: Any, trino_type: str) -> str:
    if value is None:
        return f"cast(null as {trino_type})"
    if trino_type == "varchar":
        return "'" + str(value).replace("'", "''") + "'"
    if trino_type == "date":
        return f"date '{value.isoformat()}'"
    if trino_type.startswith("timestamp"):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if trino_type == "double":
        return f"cast({value!r} as double)"
    return str(value)


def copy_marts(project: DbtProject, settings: dict[str, str]) -> None:
    import trino

    connection = trino.dbapi.connect(
        host=settings["B2P_TRINO_HOST"],
        port=int(settings["B2P_TRINO_PORT"]),
        user=settings["B2P_TRINO_USER"],
        catalog=settings["B2P_TRINO_CATALOG"],
    )
    cursor = connection.cursor()
    schema = settings["B2P_TRINO_SCHEMA"]

    def run(sql: str) -> None:
        cursor.execute(sql)
        cursor.fetchall()

    # a Hive catalog over S3 needs the schema's location (the Athena harness: s3://<bucket>/…)
    location = os.environ.get("B2P_TRINO_SCHEMA_LOCATION")
    run(
        f"create schema if not exists {schema}"
        + (f" with (location = '{location}')" if location else "")
    )
    with duckdb.connect(str(project.warehouse), read_only=True) as warehouse:
        for table in sorted(expectations.bundle_relations()):
            described = warehouse.execute(f"describe {table}").fetchall()
            columns = [(name, TRINO_TYPES[kind]) for name, kind, *_ in described]
            rows = warehouse.execute(f"select * from {table}").fetchall()
            run(f"drop table if exists {schema}.{table}")
            run(f"create table {schema}.{table} ({', '.join(f'{n} {t}' for n, t in columns)})")
            for start in range(0, len(rows), 500):
                values = ", ".join(
                    "("
                    + ", ".join(literal(v, t) for v, (_, t) in zip(row, columns, strict=True))
                    + ")"
                    for row in rows[start : start + 500]
                )
                run(f"insert into {schema}.{table} values {values}")
            run(f"select count(*) from {schema}.{table}")
    connection.close()


@pytest.fixture(scope="module")
def loaded_on_trino(
    demo_warehouse: DbtProject, tmp_path_factory: pytest.TempPathFactory
) -> DashboardLoad:
    settings = trino_settings()
    # B2P_TRINO_COPY_MARTS=0: the schema already holds marts dbt built from the default sample
    # (`b2p sample` with its defaults, as make demo), e.g. by dbt-athena on the Athena harness
    if os.environ.get("B2P_TRINO_COPY_MARTS", "1") != "0":
        copy_marts(demo_warehouse, settings)
    load = load_over(settings, tmp_path_factory.mktemp("superset-trino"), "dashboard-trino")
    print(f"\ndashboard over Trino: every chart loaded in {load.seconds:.1f} s")
    return load


def test_every_chart_draws_data_on_trino(loaded_on_trino: DashboardLoad) -> None:
    assert loaded_on_trino.problems() == []


@pytest.mark.parametrize("check", expectations.CHECKS, ids=lambda c: c.__name__[6:])
def test_chart_data_on_trino_equals_the_marts(
    check: Callable[[DashboardLoad, DbtProject], None],
    loaded_on_trino: DashboardLoad,
    demo_warehouse: DbtProject,
) -> None:
    check(loaded_on_trino, demo_warehouse)


def test_literals_keep_dates_and_quotes() -> None:
    assert literal('The "Late" Network\'s', "varchar") == "'The \"Late\" Network''s'"
    assert literal(dt.date(2026, 11, 1), "date") == "date '2026-11-01'"
    assert literal(None, "bigint") == "cast(null as bigint)"
