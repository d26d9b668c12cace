{# A date `days` days after the date expression `date_expression` (negative days go back), typed date. #}
{% macro date_add_days(date_expression, days) %}
    {{ return(adapter.dispatch('date_add_days', 'bones2peaches')(date_expression, days)) }}
{% endmacro %}

{# Trino (the trino target) among others: dbt-trino's dateadd is date_add('day', n, d), a date
   for a date, so the cast changes nothing there. #}
{% macro default__date_add_days(date_expression, days) -%}
    cast({{ dbt.dateadd('day', days, date_expression) }} as date)
{%- endmacro %}

{# date + interval is a timestamp in DuckDB: cast it back to a date #}
{% macro duckdb__date_add_days(date_expression, days) -%}
    cast(({{ date_expression }}) + interval ({{ days }}) day as date)
{%- endmacro %}

{% macro athena__date_add_days(date_expression, days) -%}
    date_add('day', {{ days }}, {{ date_expression }})
{%- endmacro %}
