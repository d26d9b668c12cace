{#
    Data tests on a scheduled run read only the days the run rebuilt, so their cost stays flat as
    the lake grows; `--vars '{test_scope: full}'` (the weekly schedule) tests every day.

    Every incremental model records the window it is about to rebuild (athena: Glue table
    properties b2p.window_start / b2p.window_end, by day_partitions; duckdb: a row of
    b2p_tested_windows, by its pre-hook); get_where_subquery, through which dbt passes the `model` of every
    generic test, restricts a tested relation to that window, and totals_match_slots applies the
    same window of stg_freewheel__slots to both sides. A relation without a recorded window (a
    seed, a view, a table just created whole) is tested whole.
#}
{#
    DuckDB: the window each incremental model rebuilt is a row of `<schema>.b2p_tested_windows`,
    written by its pre-hook inside the model's transaction (duckdb__clear_incremental_window), so
    a failed model leaves the previous row, and a model built whole removes its row. The table is
    created by on-run-start (prepare_tested_windows). The tests read it in their SQL (a scalar
    subquery per bound, no query while compiling: ~140 tests would pay one round trip each), and
    only on the incremental models' tables; the date column DuckDB then scans whole is a few MB.
#}
{% macro tested_windows_relation() %}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='b2p_tested_windows', type='table')) }}
{% endmacro %}

{% macro prepare_tested_windows() %}
    {% if bones2peaches.run_lock_applies() %}
        {% do adapter.dispatch('prepare_tested_windows', 'bones2peaches')() %}
    {% endif %}
    {{ return('') }}
{% endmacro %}

{% macro default__prepare_tested_windows() %}{% endmacro %}

{% macro duckdb__prepare_tested_windows() %}
    {% do run_query("create table if not exists " ~ bones2peaches.tested_windows_relation()
        ~ " (relation_name varchar, window_start date, window_end date)") %}
{% endmacro %}

{# The statements that replace `relation`'s recorded window by `window` (none: forget it). #}
{% macro record_tested_window(relation, window) %}
    {%- set windows = bones2peaches.tested_windows_relation() -%}
    {%- set forget = "delete from " ~ windows ~ " where relation_name = '" ~ relation.identifier ~ "'" -%}
    {%- if window is none -%}
        {{ return(forget) }}
    {%- endif -%}
    {%- set end = "null" if window['end'] is none else "date '" ~ window['end'] ~ "'" -%}
    {{ return(forget ~ ";\ninsert into " ~ windows ~ " values ('" ~ relation.identifier ~ "', date '"
        ~ window['start'] ~ "', " ~ end ~ ")") }}
{% endmacro %}

{# Whether `relation` is the table of a model that is incremental by day in this project (the
   graph: no query). Seeds, views and tables rebuilt whole are tested whole. #}
{% macro is_incremental_by_day_table(relation) %}
    {% if relation.identifier is none %}
        {{ return(false) }}
    {% endif %}
    {% for node in graph.nodes.values() if node.resource_type == 'model' and node.alias == relation.identifier %}
        {{ return(node.config.materialized in ('incremental', 'day_partitions')) }}
    {% endfor %}
    {{ return(false) }}
{% endmacro %}

{# The filter on `column` that keeps `relation`'s recorded window, or none (test everything). #}
{% macro tested_window_filter(relation, column='event_date') %}
    {% if not execute or var('test_scope', 'window') == 'full'
        or not bones2peaches.is_incremental_by_day_table(relation) %}
        {{ return(none) }}
    {% endif %}
    {{ return(adapter.dispatch('tested_window_filter', 'bones2peaches')(relation, column)) }}
{% endmacro %}

{# Trino: tests everything (its pre-hook records no window). #}
{% macro default__tested_window_filter(relation, column) %}
    {{ return(none) }}
{% endmacro %}

{% macro duckdb__tested_window_filter(relation, column) %}
    {% set recorded = "from " ~ bones2peaches.tested_windows_relation() ~ " where relation_name = '" ~ relation.identifier ~ "'" %}
    {{ return(column ~ " >= (select coalesce(max(window_start), date '0001-01-01') " ~ recorded ~ ")"
        ~ " and " ~ column ~ " < (select coalesce(max(window_end), date '9999-12-31') " ~ recorded ~ ")") }}
{% endmacro %}

{# Athena: the window day_partitions recorded on the table in Glue (none on a first build). #}
{% macro athena__tested_window_filter(relation, column) %}
    {% set table = adapter.get_glue_table(relation) %}
    {% set parameters = (table or {}).get('Table', {}).get('Parameters', {}) %}
    {% if 'b2p.window_start' not in parameters %}
        {{ return(none) }}
    {% endif %}
    {% set end = parameters.get('b2p.window_end') %}
    {% set window = {'start': parameters['b2p.window_start'], 'end': end if end else none} %}
    {{ return(bones2peaches.event_date_in_window(column, window)) }}
{% endmacro %}

{# Every adapter: dbt's own get_where_subquery (the test's `where` config), then the recorded
   window (none on Trino). #}
{% macro default__get_where_subquery(relation) -%}
    {%- set base = dbt.default__get_where_subquery(relation) -%}
    {%- set window_filter = bones2peaches.tested_window_filter(relation) -%}
    {%- if window_filter is none -%}
        {{ return(base) }}
    {%- endif -%}
    {%- set filtered -%}
        (select * from {{ base }} where {{ window_filter }}) dbt_window
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}
