"""An incremental run on Athena reads only the lookback window of every partitioned input.

Checked on the parsed SQL: the incremental model's compiled statement, with the views it reads
expanded to their compiled queries (as Athena plans them), goes through sqlglot's predicate
pushdown; then every scan of a partitioned table must carry `event_date >= <window start>` in
its own WHERE. Partitioned inputs: the lake's v4_events (Glue partition keys event_date,
event_hour) and the incremental models (Hive tables partitioned by event_date).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.athena import athena_dbt
from tests.athena.athena_dbt import AthenaDbtProject
from tests.athena.conftest import WINDOW_START, IncrementalCompile
from tests.athena.sql_checks import Scan, inline_views, parse_athena, push_filters_down, scans


def partitioned_tables(manifest: dict[str, Any]) -> dict[str, str]:
    """Partitioned table name -> type of its event_date partition column."""
    tables = {}
    for name, table_input in athena_dbt.template_glue_tables().items():
        for key in table_input.get("PartitionKeys", []):
            if key["Name"] == athena_dbt.PARTITION_COLUMN:
                tables[name] = key["Type"]
    for name in athena_dbt.incremental_models(manifest):
        tables[name] = "date"
    return tables


def partitioned_scans(project: AthenaDbtProject, model: str) -> list[Scan]:
    manifest = project.manifest()
    nodes = athena_dbt.models(manifest)
    views = {
        name: parse_athena(project.compiled_sql(node))
        for name, node in nodes.items()
        if node["config"]["materialized"] == "view"
    }
    statement = inline_views(parse_athena(project.compiled_sql(nodes[model])), views)
    pushed = push_filters_down(statement, athena_dbt.relation_schema(manifest))
    found = []
    for table, column_type in partitioned_tables(manifest).items():
        found += scans(pushed, table, athena_dbt.PARTITION_COLUMN, column_type)
    return found


# Models that read further back than the window they rebuild, and how far (DECISIONLOG.md: the
# orphan check looks for each ad's slotImpression one day before the window too).
EXTRA_LOOKBACK = {"dq_freewheel__orphan_ads": dt.timedelta(days=1)}


def test_every_incremental_model_scans_only_its_window(incremental: IncrementalCompile) -> None:
    """Every incremental model the manifest declares, so a new one is checked without a list."""
    manifest = incremental.project.manifest()
    models = athena_dbt.incremental_models(manifest)
    assert len(models) >= 8, f"expected the slots table, six marts and the orphan model: {models}"
    problems = []
    for model in models:
        earliest = dt.date.fromisoformat(WINDOW_START) - EXTRA_LOOKBACK.get(model, dt.timedelta())
        found = partitioned_scans(incremental.project, model)
        if not found:
            problems.append(f"{model} reads no partitioned table")
        problems += [
            f"{model}: {scan.table} scanned from {scan.lower_bound or 'the first partition'}, "
            f"not from {earliest}"
            for scan in found
            if scan.lower_bound is None or scan.lower_bound < earliest.isoformat()
        ]
    assert not problems, "\n".join(problems)


def test_orphan_ads_scan_the_window_and_the_slots_of_the_day_before(
    incremental: IncrementalCompile,
) -> None:
    """Slots start before their ads: the orphan check reads the window's ads from the lake and
    the slots stg_freewheel__slots holds from one day earlier (issue 14: an anti-join instead of
    a window function over both from the lake), each with a literal date bound on partitions."""
    found = partitioned_scans(incremental.project, "dq_freewheel__orphan_ads")
    day_before = (dt.date.fromisoformat(WINDOW_START) - dt.timedelta(days=1)).isoformat()
    assert sorted((scan.table, scan.lower_bound) for scan in found) == [
        ("stg_freewheel__slots", day_before),
        ("v4_events", WINDOW_START),
    ]


def test_staging_window_reaches_the_lake_partitions_through_the_view(
    incremental: IncrementalCompile,
) -> None:
    found = partitioned_scans(incremental.project, "stg_freewheel__slots")
    assert [scan.table for scan in found] == ["v4_events"]


def test_first_build_reads_every_partition(first_build: AthenaDbtProject) -> None:
    """The control: the same check finds no bound where the SQL has none."""
    for model in athena_dbt.incremental_models(first_build.manifest()):
        found = partitioned_scans(first_build, model)
        assert found, model
        assert all(scan.lower_bound is None for scan in found), model


def test_incremental_models_end_with_the_partition_column(
    incremental: IncrementalCompile,
) -> None:
    """Hive tables on Athena take the partition column from the select's last column."""
    project = incremental.project
    manifest = project.manifest()
    schema = athena_dbt.relation_schema(manifest)
    views = {
        name: parse_athena(project.compiled_sql(node))
        for name, node in athena_dbt.models(manifest).items()
        if node["config"]["materialized"] == "view"
    }
    for name, node in athena_dbt.incremental_models(manifest).items():
        statement = inline_views(parse_athena(project.compiled_sql(node)), views)
        columns = push_filters_down(statement, schema).named_selects
        assert columns[-1] == athena_dbt.PARTITION_COLUMN, f"{name} ends with {columns[-1]}"
        assert columns == list(node["columns"]), f"{name}: columns differ from its YAML"
