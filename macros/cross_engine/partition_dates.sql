{#
    A relation with the table's event_date values, for the window's anchor (max(event_date)).
    On Hive tables (Athena, Trino) the table's "$partitions" metadata table: max(event_date) on
    the table itself plans every partition of it, a read that grows with the history. DuckDB
    answers from the table.
#}
{% macro partition_dates(relation) %}
    {{ return(adapter.dispatch('partition_dates', 'bones2peaches')(relation)) }}
{% endmacro %}

{% macro default__partition_dates(relation) -%}
    {{ relation }}
{%- endmacro %}

{% macro athena__partition_dates(relation) -%}
    "{{ relation.database }}"."{{ relation.schema }}"."{{ relation.identifier }}$partitions"
{%- endmacro %}

{# Trino (the trino target): Athena's engine, the same Hive metadata table #}
{% macro trino__partition_dates(relation) -%}
    {{ return(bones2peaches.athena__partition_dates(relation)) }}
{%- endmacro %}
