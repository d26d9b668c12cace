{#
    Config of every model that is incremental by event_date: each run replaces whole days.
    A model uses it as `{{ config(**bones2peaches.incremental_by_day_config()) }}`; the SQL must end
    with the event_date column (Hive tables on Athena need the partition column last).
    Both engines' strategies replace only the days present in the new batch, so the pre-hook
    (clear_incremental_window) first empties the table from the window's first day on: a day a
    corrected file emptied leaves no stale rows.
#}
{# The pre-hook's text, rendered only when the model runs (never at parse or compile time). #}
{% macro clear_incremental_window_hook() %}
    {{ return('{{ bones2peaches.clear_incremental_window() }}') }}
{% endmacro %}

{% macro incremental_by_day_config() %}
    {{ return(adapter.dispatch('incremental_by_day_config', 'bones2peaches')()) }}
{% endmacro %}

{# delete+insert keyed on event_date deletes every day present in the new batch, then inserts it:
   a day replace (the pre-hook has already deleted every day of the window). #}
{% macro default__incremental_by_day_config() %}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': 'event_date',
        'on_schema_change': 'fail',
        'pre_hook': [bones2peaches.clear_incremental_window_hook()],
    }) }}
{% endmacro %}

{% macro duckdb__incremental_by_day_config() %}
    {{ return(bones2peaches.default__incremental_by_day_config()) }}
{% endmacro %}

{# Athena: Hive Parquet tables partitioned by event_date, replaced a day at a time by the
   day_partitions materialization (macros/athena/day_partitions.sql): new days under new
   prefixes, then each Glue partition repointed, so readers never see a day missing or doubled
   and a failed run leaves the previous data (DECISIONLOG.md: why Hive, not Iceberg). #}
{% macro athena__incremental_by_day_config() %}
    {{ return({
        'materialized': 'day_partitions',
        'on_schema_change': 'fail',
    }) }}
{% endmacro %}

{# Trino, Starburst, EMR (the trino target, dbt-trino) on a Hive catalog: Parquet partitioned by
   event_date; the pre-hook deletes the window's whole partitions (Trino's Hive connector
   deletes whole partitions of non-transactional tables), then the batch is appended. Unlike
   Athena's day_partitions, readers can see the window's days missing during a run. #}
{% macro trino__incremental_by_day_config() %}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'properties': {'format': "'PARQUET'", 'partitioned_by': "ARRAY['event_date']"},
        'on_schema_change': 'fail',
        'pre_hook': [bones2peaches.clear_incremental_window_hook()],
    }) }}
{% endmacro %}
