"""`dbt docs generate` works on both targets, and the athena target is configured only through
environment variables that the deployed dbt task sets."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.athena import athena_dbt
from tests.athena.athena_dbt import AthenaDbtProject
from tests.athena.conftest import IncrementalCompile
from tests.infra.cfn import load_template
from tests.support.dbt import REPO, DbtProject

PROFILE_SETTINGS = (
    "region_name",
    "s3_staging_dir",
    "s3_data_dir",
    "database",
    "schema",
    "work_group",
    "threads",
)


def catalog_tables(catalog: dict[str, Any]) -> set[str]:
    return {
        entry["metadata"]["name"]
        for entry in [*catalog["nodes"].values(), *catalog["sources"].values()]
    }


def test_docs_generate_on_athena_catalogs_the_lake_and_the_models(
    first_build: AthenaDbtProject, incremental: IncrementalCompile
) -> None:
    assert "v4_events" in catalog_tables(first_build.catalog())
    catalog = incremental.project.catalog()
    assert set(athena_dbt.incremental_models(incremental.project.manifest())) <= catalog_tables(
        catalog
    )
    (v4_events,) = [s for s in catalog["sources"].values() if s["metadata"]["name"] == "v4_events"]
    assert {"event_date", "event_hour", "transaction_id"} <= set(v4_events["columns"])


def test_docs_generate_on_duckdb_catalogs_every_model(duckdb_reference: DbtProject) -> None:
    target = duckdb_reference.work / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    assert set(athena_dbt.models(manifest)) <= catalog_tables(catalog)


def env_vars(text: str) -> set[str]:
    return set(re.findall(r"env_var\('(\w+)'", text))


def test_athena_target_reads_every_setting_from_the_environment() -> None:
    profile = yaml.safe_load((REPO / "profiles.yml.example").read_text())
    outputs = profile["bones2peaches"]["outputs"]
    assert {"local", "athena"} <= set(outputs)
    athena = outputs["athena"]
    assert athena["type"] == "athena"
    for setting in PROFILE_SETTINGS:
        assert "env_var(" in str(athena[setting]), f"{setting} is not read from the environment"


def test_deployed_dbt_task_sets_every_variable_the_athena_target_needs() -> None:
    athena = yaml.safe_load((REPO / "profiles.yml.example").read_text())["bones2peaches"][
        "outputs"
    ]["athena"]
    sources = (REPO / "models" / "staging" / "_freewheel__sources.yml").read_text()
    schema_line = next(line for line in sources.splitlines() if line.strip().startswith("schema:"))
    needed = env_vars(yaml.safe_dump(athena)) | env_vars(schema_line)
    needed -= {"B2P_ATHENA_THREADS"}  # a default that suits Athena's per-query concurrency
    (task,) = [
        r
        for r in load_template()["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        and r["Properties"]["ContainerDefinitions"][0]["Command"][-1:] == ["athena"]
    ]
    environment = {e["Name"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert needed <= environment, f"not set by the dbt task: {sorted(needed - environment)}"
