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

{# Athena has no DELETE on Hive tables: insert_overwrite drops the S3 data of every event_date
   partition present in the new batch, then inserts it (DECISIONLOG.md: why Hive, not Iceberg);
   the pre-hook has already dropped every partition of the window. #}
{% macro athena__incremental_by_day_config() %}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'table_type': 'hive',
        'format': 'parquet',
        'write_compression': 'zstd',
        'partitioned_by': ['event_date'],
        'on_schema_change': 'fail',
        'pre_hook': [bones2peaches.clear_incremental_window_hook()],
    }) }}
{% endmacro %}
