"""Every model compiles for the athena target offline, in both branches of is_incremental()."""

from __future__ import annotations

from sqlglot import exp

from tests.athena import athena_dbt
from tests.athena.athena_dbt import AthenaDbtProject
from tests.athena.conftest import IncrementalCompile
from tests.athena.sql_checks import parse_athena
from tests.support.dbt_models import model_names

EXPECTED_MODELS = set(model_names())  # every .sql file under models/


def compiled_models(project: AthenaDbtProject) -> dict[str, str]:
    return {
        name: project.compiled_sql(node)
        for name, node in athena_dbt.models(project.manifest()).items()
    }


def test_every_model_compiles_before_the_first_run(first_build: AthenaDbtProject) -> None:
    compiled = compiled_models(first_build)
    assert set(compiled) == EXPECTED_MODELS
    assert all(sql.strip() for sql in compiled.values())


def test_every_model_compiles_for_an_incremental_run(incremental: IncrementalCompile) -> None:
    compiled = compiled_models(incremental.project)
    assert set(compiled) == EXPECTED_MODELS
    assert all(sql.strip() for sql in compiled.values())


def test_incremental_compile_asks_each_incremental_model_for_its_window_once(
    incremental: IncrementalCompile,
) -> None:
    manifest = incremental.project.manifest()
    asked = []
    for query in incremental.queries:
        (table,) = parse_athena(query).find_all(exp.Table)
        assert (table.catalog, table.db) == (athena_dbt.CATALOG, athena_dbt.MODELS_DATABASE)
        # the table's "$partitions" metadata: its event_date values without reading its files
        assert table.name.endswith("$partitions"), table.name
        asked.append(table.name.removesuffix("$partitions"))
    assert sorted(asked) == sorted(athena_dbt.incremental_models(manifest))


def test_incremental_models_are_built_by_day_partitions_without_a_pre_hook(
    first_build: AthenaDbtProject,
) -> None:
    incremental = athena_dbt.incremental_models(first_build.manifest())
    assert set(incremental) == EXPECTED_MODELS - {
        "stg_freewheel__v4_events",
        "stg_freewheel__sites",
        "stg_freewheel__site_sections",
        "stg_freewheel__series",
        "stg_freewheel__v4_event_lineage",  # a view
        "dq_freewheel__delivery_health",  # a small table, rebuilt whole
    }
    for name, node in incremental.items():
        # macros/athena/day_partitions.sql replaces the window's days itself (its CTAS exists
        # only at run time: tests/athena_e2e runs it); no clear_incremental_window pre-hook
        assert node["config"]["materialized"] == "day_partitions", name
        assert node["config"]["pre-hook"] == [], name
