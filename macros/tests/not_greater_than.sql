{# Fails on rows where `column_name` exceeds `other_column` by more than `tolerance`. #}
{% test not_greater_than(model, column_name, other_column, tolerance=0.000001) %}

select * from {{ model }}
where {{ column_name }} > {{ other_column }} + {{ tolerance }}

{% endtest %}
