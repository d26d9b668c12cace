{#
    The two shapes of capacity mart. Each mart model is its config plus one call, so the six
    marts cannot drift apart; the metrics themselves are capacity_metrics().
    Both read the incremental window of stg_freewheel__slots (whole days, see
    incremental_window_start) and end with event_date (the Athena partition column).
#}

{# One row per event_date x event_hour with at least one slot of `slot_type`. #}
{% macro capacity_by_hour_mart(slot_type) %}
{%- set window = bones2peaches.incremental_window() %}

with

slots as (

    select * from {{ ref('stg_freewheel__slots') }}
    where slot_type = '{{ slot_type }}'
        and {{ bones2peaches.event_date_in_window('event_date', window) }}

),

hourly as (

    select
        event_hour,
        {{ bones2peaches.capacity_metrics() | indent(8) }},
        event_date

    from slots
    group by event_date, event_hour

)

select * from hourly
{% endmacro %}


{#
    One row per event_date x slot_type x <id_column>, all slot types, named from the dimension
    `dimension_model` (see dimension_name for ids missing from it or null).
    With `parent` (dimension_model, id_column, name_column, label of the dimension the member
    belongs to, e.g. a site section's site), the member's parent id as the dimension snapshot
    gives it and its name follow the member's name: BI tools drill down from parent to member.
#}
{% macro capacity_by_dimension_mart(dimension_model, id_column, name_column, label, parent=none) %}
{%- set window = bones2peaches.incremental_window() %}

with

slots as (

    select * from {{ ref('stg_freewheel__slots') }}
    where {{ bones2peaches.event_date_in_window('event_date', window) }}

),

dimension as (

    select * from {{ ref(dimension_model) }}

),
{%- if parent %}

parent_dimension as (

    select * from {{ ref(parent.dimension_model) }}

),
{%- endif %}

daily as (

    select
        slot_type,
        {{ id_column }},
        {{ bones2peaches.capacity_metrics() | indent(8) }},
        event_date

    from slots
    group by event_date, slot_type, {{ id_column }}

),

named as (

    select
        daily.slot_type,
        daily.{{ id_column }},
        {{ bones2peaches.dimension_name('daily.' ~ id_column, 'dimension.' ~ name_column, label) | indent(8) }} as {{ name_column }},
        {%- if parent %}
        dimension.{{ parent.id_column }},
        {{ bones2peaches.dimension_name('dimension.' ~ parent.id_column, 'parent_dimension.' ~ parent.name_column, parent.label) | indent(8) }} as {{ parent.name_column }},
        {%- endif %}
        {%- for metric in bones2peaches.capacity_metric_names() %}
        daily.{{ metric }},
        {%- endfor %}
        daily.event_date

    from daily
    left join dimension
        on daily.{{ id_column }} = dimension.{{ id_column }}
    {%- if parent %}
    left join parent_dimension
        on dimension.{{ parent.id_column }} = parent_dimension.{{ parent.id_column }}
    {%- endif %}

)

select * from named
{% endmacro %}
