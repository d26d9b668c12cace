"""dbt on the athena target with no AWS account: dbt-athena talks to a moto_server on loopback.

dbt-athena needs AWS even to compile: Glue tells it which relations exist (is_incremental()),
Athena runs the queries macros send with run_query. moto's Glue stores databases and tables for
real; moto's Athena executes nothing but returns results queued in advance and records every
query it was sent. The Glue catalog here is the one infra/bones2peaches.yaml deploys: its
AWS::Glue::Table resources, with their !Sub parameters filled in.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.infra.cfn import load_template, resources_of_type
from tests.support import moto
from tests.support.dbt import REPO, DbtProject

LAKE_BUCKET = "b2p-test-lake"
RESULTS_BUCKET = "b2p-test-athena-results"
# Models and lake tables in two Glue databases, so that a source read through the wrong
# schema fails instead of passing by accident.
MODELS_DATABASE = "b2p_models"
LAKE_DATABASE = "b2p_lake"
CATALOG = "awsdatacatalog"
PROJECTION_START = "2024-01-01"
PARTITION_COLUMN = "event_date"


def athena_profile_env() -> dict[str, str]:
    """Every variable profiles.yml.example's athena target and the sources read."""
    return {
        "B2P_ATHENA_REGION": "us-east-1",
        "B2P_ATHENA_S3_STAGING_DIR": f"s3://{RESULTS_BUCKET}/dbt/",
        "B2P_ATHENA_S3_DATA_DIR": f"s3://{LAKE_BUCKET}/dbt/",
        "B2P_ATHENA_CATALOG": CATALOG,
        "B2P_ATHENA_SCHEMA": MODELS_DATABASE,
        "B2P_ATHENA_WORKGROUP": "primary",
        "B2P_ATHENA_THREADS": "2",
        "B2P_LAKE_GLUE_DATABASE": LAKE_DATABASE,
        "B2P_LAKE": f"s3://{LAKE_BUCKET}",
    }


@dataclass(frozen=True)
class AthenaDbtProject(DbtProject):
    """A dbt working area whose athena target points at the moto_server `endpoint`."""

    endpoint: str = ""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("AWS_PROFILE", None)
        env.update(moto.aws_env(self.endpoint))
        env.update(athena_profile_env())
        return env

    def athena(self, *args: str) -> None:
        self.run(*args, "--target", "athena")

    @property
    def target(self) -> Path:
        return self.work / "target"

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.target / "manifest.json").read_text())

    def catalog(self) -> dict[str, Any]:
        return json.loads((self.target / "catalog.json").read_text())

    def compiled_sql(self, node: dict[str, Any]) -> str:
        """What dbt wrote to target/compiled for the node (its `compiled_path`)."""
        return Path(node["compiled_path"]).read_text()


def models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The project's models by name."""
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["package_name"] == "bones2peaches"
    }


def incremental_models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: node
        for name, node in models(manifest).items()
        if node["config"]["materialized"] in ("incremental", "day_partitions")
    }


# ---- the Glue catalog of the deployment


def _substitute(text: str, parameters: dict[str, str]) -> str:
    # ${Name} is a parameter; ${!Name} is the literal ${Name} (Athena's projection placeholders).
    def replace(match: re.Match[str]) -> str:
        return "${" + match[2] + "}" if match[1] else parameters[match[2]]

    return re.sub(r"\$\{(!?)([\w:.]+)\}", replace, text)


def resolve_intrinsics(value: Any, parameters: dict[str, str]) -> Any:
    """The template value with Ref and Fn::Sub replaced by the parameters' values."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return parameters[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            return _substitute(value["Fn::Sub"], parameters)
        return {key: resolve_intrinsics(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_intrinsics(item, parameters) for item in value]
    return value


def template_glue_tables() -> dict[str, dict[str, Any]]:
    """TableInput of every Glue table infra/bones2peaches.yaml creates, by table name."""
    parameters = {
        "LakeBucket": LAKE_BUCKET,
        "ProjectionStartDate": PROJECTION_START,
        "GlueDatabase": LAKE_DATABASE,
        "AWS::AccountId": "123456789012",
    }
    tables = {}
    for resource in resources_of_type(load_template(), "AWS::Glue::Table").values():
        table_input = resolve_intrinsics(resource["Properties"]["TableInput"], parameters)
        tables[table_input["Name"]] = table_input
    return tables


def create_lake_catalog() -> None:
    """Buckets, both Glue databases and the lake's tables exactly as the stack defines them."""
    s3 = boto3.client("s3")
    glue = boto3.client("glue")
    for bucket in (LAKE_BUCKET, RESULTS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for database in (MODELS_DATABASE, LAKE_DATABASE):
        glue.create_database(DatabaseInput={"Name": database})
    for table_input in template_glue_tables().values():
        glue.create_table(DatabaseName=LAKE_DATABASE, TableInput=table_input)


def create_model_tables(model_nodes: Iterable[dict[str, Any]]) -> None:
    """Glue tables for models as a previous `dbt run` on Athena leaves them: Hive tables
    partitioned by event_date. Compile reads only their existence, type and partitioning, so
    the other columns are named as documented and typed string."""
    glue = boto3.client("glue")
    for node in model_nodes:
        columns = [
            {"Name": name, "Type": "string"} for name in node["columns"] if name != PARTITION_COLUMN
        ]
        glue.create_table(
            DatabaseName=MODELS_DATABASE,
            TableInput={
                "Name": node["name"],
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet"},
                "StorageDescriptor": {
                    "Columns": columns,
                    "Location": f"s3://{LAKE_BUCKET}/dbt/{MODELS_DATABASE}/{node['name']}/",
                },
                "PartitionKeys": [{"Name": PARTITION_COLUMN, "Type": "date"}],
            },
        )


def relation_schema(manifest: dict[str, Any]) -> dict[str, dict[str, dict[str, dict[str, str]]]]:
    """Columns of every physical relation the models read on Athena, for sqlglot's qualifier:
    the lake's Glue tables as the stack defines them, the seeds' CSV headers, and the documented
    columns of table and incremental models. Views are not here: checks inline them."""
    lake: dict[str, dict[str, str]] = {}
    for name, table_input in template_glue_tables().items():
        columns = [
            *table_input["StorageDescriptor"]["Columns"],
            *table_input.get("PartitionKeys", []),
        ]
        lake[name] = {column["Name"]: column["Type"] for column in columns}
    built: dict[str, dict[str, str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "seed":
            header = (REPO / node["original_file_path"]).read_text().splitlines()[0]
            built[node["name"]] = {column: "varchar" for column in header.split(",")}
        elif node["resource_type"] == "model" and node["config"]["materialized"] != "view":
            built[node["name"]] = {
                column: "date" if column == PARTITION_COLUMN else "varchar"
                for column in node["columns"]
            }
    return {CATALOG: {LAKE_DATABASE: lake, MODELS_DATABASE: built}}


# ---- moto's Athena


def queue_query_results(endpoint: str, values: list[str]) -> None:
    """The next len(values) Athena queries each return one varchar row holding the value."""
    column = {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": "_col0",
        "Label": "_col0",
        "Type": "varchar",
        "Precision": 2147483647,
        "Scale": 0,
        "Nullable": "UNKNOWN",
        "CaseSensitive": True,
    }
    body = {
        "results": [
            {
                # Athena returns the header as the first row of a SELECT's results
                "rows": [{"Data": [{"VarCharValue": "_col0"}]}, {"Data": [{"VarCharValue": v}]}],
                "column_info": [column],
            }
            for v in values
        ]
    }
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def athena_queries() -> list[str]:
    """Every query moto's Athena has been sent, oldest first."""
    athena = boto3.client("athena")
    queries = []
    for execution_id in athena.list_query_executions()["QueryExecutionIds"]:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        queries.append((execution["Status"]["SubmissionDateTime"], execution["Query"]))
    return [query for _, query in sorted(queries, key=lambda item: item[0])]


__all__ = ["REPO", "AthenaDbtProject"]
