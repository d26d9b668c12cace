{# Fails on rows where `column_name` differs from `minuend - subtrahend` by more than `tolerance`. #}
{% test equals_difference(model, column_name, minuend, subtrahend, tolerance=0.000001) %}

select * from {{ model }}
where abs({{ column_name }} - ({{ minuend }} - {{ subtrahend }})) > {{ tolerance }}

{% endtest %}
