{#
    The eight capacity metrics of a mart, aggregated from slot rows of stg_freewheel__slots (the
    definitions: models/docs.md). Use in a select list with a group by on the mart's grain.
#}
{% macro capacity_metrics() -%}
cast(sum(slot_impressions) as bigint) as slot_impressions,
cast(sum(ad_impressions) as bigint) as ad_impressions,
cast(sum(monetized_impressions) as bigint) as monetized_impressions,
sum(capacity_seconds) as capacity_seconds,
sum(delivered_seconds) as delivered_seconds,
sum(monetized_seconds) as monetized_seconds,
sum(unsold_seconds) as unsold_seconds,
sum(monetized_seconds) / nullif(sum(capacity_seconds), 0) as sell_through_rate
{%- endmacro %}

{# The metric columns in mart order, for models and tests that list them. #}
{% macro capacity_metric_names() %}
    {{ return([
        'slot_impressions', 'ad_impressions', 'monetized_impressions', 'capacity_seconds',
        'delivered_seconds', 'monetized_seconds', 'unsold_seconds', 'sell_through_rate',
    ]) }}
{% endmacro %}
