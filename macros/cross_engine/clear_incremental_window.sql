{#
    Pre-hook of every incremental model (set by incremental_by_day_config): removes every row of
    the model's table from the window's first day on, before the rebuilt days are inserted.
    delete+insert and insert_overwrite replace only the days present in the new batch, so a day a
    corrected file emptied (or a slot moved to another day) would otherwise keep its old rows.
    Does nothing outside an incremental run (first build, --full-refresh: the table is replaced).
#}
{% macro clear_incremental_window() %}
    {%- if execute and is_incremental() -%}
        {%- set window_start = bones2peaches.incremental_window_start() -%}
        {%- if window_start is not none -%}
            {{ return(adapter.dispatch('clear_incremental_window', 'bones2peaches')(this, window_start)) }}
        {%- endif -%}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}

{# DuckDB (and any engine with DELETE): one statement, inside the model's transaction. #}
{% macro default__clear_incremental_window(relation, window_start) -%}
    {{ return("delete from " ~ relation ~ " where event_date >= date '" ~ window_start ~ "'") }}
{%- endmacro %}

{# Athena's Hive tables have no DELETE: drop the window's event_date partitions (Glue entries and
   their S3 data) with the same adapter method dbt-athena's insert_overwrite uses, given a Glue
   partition expression. The hook then renders to nothing, so no SQL is sent. #}
{% macro athena__clear_incremental_window(relation, window_start) -%}
    {% do adapter.clean_up_partitions(relation, "event_date >= '" ~ window_start ~ "'") %}
    {{ return('') }}
{%- endmacro %}
