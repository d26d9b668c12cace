{#
    Returns the model's rows: with severity warn, dbt reports "Got N results" — how many rows a
    data-quality model found — without failing the build.
#}
{% test has_no_rows(model) %}

select * from {{ model }}

{% endtest %}
