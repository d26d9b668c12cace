{#
    Pre-hook of every incremental model (set by incremental_by_day_config): removes every row of
    the model's table in the window ([start, end), or from start on), before the rebuilt days are
    inserted.
    delete+insert and insert_overwrite replace only the days present in the new batch, so a day a
    corrected file emptied (or a slot moved to another day) would otherwise keep its old rows.
    Does nothing outside an incremental run (first build, --full-refresh: the table is replaced).
#}
{% macro clear_incremental_window() %}
    {%- if execute and is_incremental() -%}
        {%- set window = bones2peaches.incremental_window() -%}
        {%- if window is not none -%}
            {{ return(adapter.dispatch('clear_incremental_window', 'bones2peaches')(this, window)) }}
        {%- endif -%}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}

{# DuckDB (and any engine with DELETE): one statement, inside the model's transaction. #}
{% macro default__clear_incremental_window(relation, window) -%}
    {{ return("delete from " ~ relation ~ " where " ~ bones2peaches.event_date_in_window('event_date', window)) }}
{%- endmacro %}
