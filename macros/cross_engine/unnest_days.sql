{#
    A FROM item that turns each row of `relation` into one row per day from `first_date` to
    `last_date` (date expressions over that row, both included), the day in column `day`.
    Use as: `from bounds {{ bones2peaches.unnest_days('bounds', 'first_date', 'last_date') }}`.
    Days, not hours: Trino's sequence() returns at most 10,000 elements (27 years of days,
    barely more than a year of hours).
#}
{% macro unnest_days(relation, first_date, last_date) %}
    {{ return(adapter.dispatch('unnest_days', 'bones2peaches')(relation, first_date, last_date)) }}
{% endmacro %}

{% macro default__unnest_days(relation, first_date, last_date) -%}
cross join unnest(sequence({{ relation }}.{{ first_date }}, {{ relation }}.{{ last_date }}, interval '1' day)) as days (day)
{%- endmacro %}

{# DuckDB's generate_series over dates yields timestamps: unnest as a lateral subquery, cast back #}
{% macro duckdb__unnest_days(relation, first_date, last_date) -%}
cross join lateral (
    select cast(unnest(generate_series({{ relation }}.{{ first_date }}, {{ relation }}.{{ last_date }}, interval 1 day)) as date) as day
) as days
{%- endmacro %}
