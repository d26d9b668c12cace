"""On Athena a generic test reads only the window an incremental model recorded on its Glue table
(macros/tests/test_window.sql); any other relation is tested whole, whatever its Glue table says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.athena import athena_dbt
from tests.athena.athena_dbt import AthenaDbtProject
from tests.athena.conftest import IncrementalCompile

WINDOW = {"b2p.window_start": "2026-11-02", "b2p.window_end": "2026-11-04"}
INCREMENTAL_TEST = "not_null_stg_freewheel__slots_slot_type"
WHOLE_TABLE_TEST = "not_null_dq_freewheel__delivery_health_network_id"  # a table rebuilt whole


def glue_parameters(table: str) -> dict[str, str]:
    glue = boto3.client("glue")
    return glue.get_table(DatabaseName=athena_dbt.MODELS_DATABASE, Name=table)["Table"].get(
        "Parameters", {}
    )


def replace_parameters(table: str, parameters: dict[str, str]) -> None:
    """The Glue table's Parameters, replaced whole (update_table takes the whole TableInput)."""
    glue = boto3.client("glue")
    current = glue.get_table(DatabaseName=athena_dbt.MODELS_DATABASE, Name=table)["Table"]
    kept = ("Name", "TableType", "StorageDescriptor", "PartitionKeys")
    table_input = {key: current[key] for key in kept if key in current}
    glue.update_table(
        DatabaseName=athena_dbt.MODELS_DATABASE,
        TableInput={**table_input, "Parameters": parameters},
    )


@pytest.fixture
def recorded_windows(incremental: IncrementalCompile) -> Iterator[None]:
    """WINDOW on stg_freewheel__slots's table, and on a Glue table of the whole-table model;
    the catalog as it was afterwards (the package's other tests share it)."""
    whole = athena_dbt.models(incremental.project.manifest())["dq_freewheel__delivery_health"]
    athena_dbt.create_model_tables([whole])
    slots_parameters = glue_parameters("stg_freewheel__slots")
    try:
        replace_parameters("stg_freewheel__slots", {**slots_parameters, **WINDOW})
        replace_parameters(whole["name"], {**glue_parameters(whole["name"]), **WINDOW})
        yield
    finally:
        boto3.client("glue").delete_table(
            DatabaseName=athena_dbt.MODELS_DATABASE, Name=whole["name"]
        )
        replace_parameters("stg_freewheel__slots", slots_parameters)


def test_a_test_reads_the_recorded_window_of_an_incremental_model_only(
    recorded_windows: None, athena_endpoint: str, tmp_path: Path
) -> None:
    project = AthenaDbtProject(work=tmp_path, lake=tmp_path / "unused", endpoint=athena_endpoint)
    project.athena("compile", "--select", INCREMENTAL_TEST, WHOLE_TABLE_TEST)
    tests = {
        node["name"]: project.compiled_sql(node)
        for node in project.manifest()["nodes"].values()
        if node["name"] in (INCREMENTAL_TEST, WHOLE_TABLE_TEST)
    }
    windowed = " ".join(tests[INCREMENTAL_TEST].split())
    assert "event_date >= date '2026-11-02' and event_date < date '2026-11-04'" in windowed
    assert "event_date" not in tests[WHOLE_TABLE_TEST]
