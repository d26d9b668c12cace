{#
    Data tests on a scheduled run read only the days the run rebuilt, so their cost stays flat as
    the lake grows; `--vars '{test_scope: full}'` (the weekly schedule) tests every day.

    Every incremental model's pre-hook records the window it is about to rebuild on its table
    (athena: Glue table properties b2p.window_start / b2p.window_end, see
    clear_incremental_window); get_where_subquery, through which dbt passes the `model` of every
    generic test, restricts a tested relation to that window, and totals_match_slots applies the
    same window of stg_freewheel__slots to both sides. A relation without a recorded window (a
    seed, a view, a table just created whole) is tested whole.
#}
{% macro tested_window(relation) %}
    {% if not execute or var('test_scope', 'window') == 'full' %}
        {{ return(none) }}
    {% endif %}
    {{ return(adapter.dispatch('tested_window', 'bones2peaches')(relation)) }}
{% endmacro %}

{# DuckDB: local builds test everything (cheap, and the warehouse is the whole history). #}
{% macro default__tested_window(relation) %}
    {{ return(none) }}
{% endmacro %}

{% macro athena__tested_window(relation) %}
    {% set table = adapter.get_glue_table(relation) %}
    {% set parameters = (table or {}).get('Table', {}).get('Parameters', {}) %}
    {% if 'b2p.window_start' not in parameters %}
        {{ return(none) }}
    {% endif %}
    {% set end = parameters.get('b2p.window_end') %}
    {{ return({'start': parameters['b2p.window_start'], 'end': end if end else none}) }}
{% endmacro %}

{# dbt's own get_where_subquery (the test's `where` config), then the recorded window. #}
{% macro athena__get_where_subquery(relation) -%}
    {%- set base = dbt.default__get_where_subquery(relation) -%}
    {%- set window = bones2peaches.tested_window(relation) -%}
    {%- if window is none -%}
        {{ return(base) }}
    {%- endif -%}
    {%- set filtered -%}
        (select * from {{ base }} where {{ bones2peaches.event_date_in_window('event_date', window) }}) dbt_window
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}
