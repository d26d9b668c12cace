"""The hand-run DDL of v4_events (macros/athena/create_v4_events_table.sql) creates the table the
CloudFormation stack creates: same columns and types in the same order, same partition keys,
location and partition projection."""

from __future__ import annotations

import json

import pytest
from sqlglot import exp

from tests.athena import athena_dbt
from tests.athena.athena_dbt import AthenaDbtProject
from tests.athena.sql_checks import parse_athena


@pytest.fixture(scope="module")
def ddl(athena_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> exp.Create:
    work = tmp_path_factory.mktemp("athena-ddl")
    project = AthenaDbtProject(work=work, lake=work / "unused", endpoint=athena_endpoint)
    before = len(athena_dbt.athena_queries())
    args = {
        "lake": f"s3://{athena_dbt.LAKE_BUCKET}",
        "projection_start": athena_dbt.PROJECTION_START,
    }
    project.athena("run-operation", "create_v4_events_table", "--args", json.dumps(args))
    (statement,) = athena_dbt.athena_queries()[before:]
    tree = parse_athena(statement)
    assert isinstance(tree, exp.Create)
    return tree


def hive_type(column: exp.ColumnDef) -> str:
    return column.args["kind"].sql(dialect="hive").lower()


def test_ddl_creates_the_stack_s_table(ddl: exp.Create) -> None:
    table = athena_dbt.template_glue_tables()["v4_events"]
    assert (ddl.this.this.db, ddl.this.this.name) == (athena_dbt.LAKE_DATABASE, "v4_events")
    columns = [(c.name, hive_type(c)) for c in ddl.this.expressions]
    assert columns == [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]

    properties = ddl.args["properties"].expressions
    (partitioned_by,) = [p for p in properties if isinstance(p, exp.PartitionedByProperty)]
    keys = [(c.name, hive_type(c)) for c in partitioned_by.this.expressions]
    assert keys == [(k["Name"], k["Type"]) for k in table["PartitionKeys"]]

    (location,) = [p for p in properties if isinstance(p, exp.LocationProperty)]
    assert location.this.name == table["StorageDescriptor"]["Location"]
    (file_format,) = [p for p in properties if isinstance(p, exp.FileFormatProperty)]
    assert file_format.name.upper() == "PARQUET"
    assert "ParquetHiveSerDe" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]

    tblproperties = {
        p.this.name: p.args["value"].name for p in properties if type(p) is exp.Property
    }
    # Athena sets EXTERNAL itself for CREATE EXTERNAL TABLE
    expected = {k: v for k, v in table["Parameters"].items() if k != "EXTERNAL"}
    assert tblproperties == expected


@pytest.fixture(scope="module")
def dimension_ddls(
    athena_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> list[exp.Create]:
    work = tmp_path_factory.mktemp("athena-dimension-ddl")
    project = AthenaDbtProject(work=work, lake=work / "unused", endpoint=athena_endpoint)
    before = len(athena_dbt.athena_queries())
    args = {"lake": f"s3://{athena_dbt.LAKE_BUCKET}"}
    project.athena("run-operation", "create_dimension_tables", "--args", json.dumps(args))
    trees = [parse_athena(statement) for statement in athena_dbt.athena_queries()[before:]]
    assert all(isinstance(tree, exp.Create) for tree in trees)
    return trees


def test_dimension_ddls_create_the_stack_s_dimension_tables(
    dimension_ddls: list[exp.Create],
) -> None:
    """Without the stack the dimension sources need their Glue tables too: one statement per
    unpartitioned table of the stack other than v4_events, with its columns and location."""
    stack = {
        name: table
        for name, table in athena_dbt.template_glue_tables().items()
        if not table.get("PartitionKeys")
    }
    created = {ddl.this.this.name: ddl for ddl in dimension_ddls}
    assert set(created) == set(stack) == {"sites", "site_sections", "series"}
    for name, ddl in created.items():
        table = stack[name]
        assert ddl.this.this.db == athena_dbt.LAKE_DATABASE
        columns = [(c.name, hive_type(c)) for c in ddl.this.expressions]
        assert columns == [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        properties = ddl.args["properties"].expressions
        assert not [p for p in properties if isinstance(p, exp.PartitionedByProperty)]
        (location,) = [p for p in properties if isinstance(p, exp.LocationProperty)]
        assert location.this.name == table["StorageDescriptor"]["Location"]
        (file_format,) = [p for p in properties if isinstance(p, exp.FileFormatProperty)]
        assert file_format.name.upper() == "PARQUET"
