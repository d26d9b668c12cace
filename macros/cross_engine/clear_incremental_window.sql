{#
    Pre-hook of every incremental model (set by incremental_by_day_config): removes every row of
    the model's table in the window ([start, end), or from start on), before the rebuilt days are
    inserted.
    delete+insert and insert_overwrite replace only the days present in the new batch, so a day a
    corrected file emptied (or a slot moved to another day) would otherwise keep its old rows.
    Does nothing outside an incremental run (first build, --full-refresh: the table is replaced).
#}
{% macro clear_incremental_window() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {#- computed once: the statements below change what incremental_window_start would find -#}
    {%- set window = bones2peaches.incremental_window() if is_incremental() else none -%}
    {{ return(adapter.dispatch('clear_incremental_window', 'bones2peaches')(this, window)) }}
{% endmacro %}

{# Any engine with DELETE (Trino): one statement; nothing on a build of the whole table. #}
{% macro default__clear_incremental_window(relation, window) -%}
    {%- if window is none -%}
        {{ return('') }}
    {%- endif -%}
    {{ return("delete from " ~ relation ~ " where " ~ bones2peaches.event_date_in_window('event_date', window)) }}
{%- endmacro %}

{# DuckDB: the same inside the model's transaction, and the window recorded for the data tests
   (macros/tests/test_window.sql) in that transaction too; a whole build forgets the record. #}
{% macro duckdb__clear_incremental_window(relation, window) -%}
    {%- set record = bones2peaches.record_tested_window(relation, window) -%}
    {%- if window is none -%}
        {{ return(record) }}
    {%- endif -%}
    {{ return(bones2peaches.default__clear_incremental_window(relation, window) ~ ";\n" ~ record) }}
{%- endmacro %}
