{#
    A mart's additive metrics, summed per event_date x slot_type, equal the same sums over the slot
    rows of `slots` (stg_freewheel__slots). `slot_type` is the one type an hourly mart holds; leave
    it out for marts with a slot_type column. Fails with one row per day and slot type that differs
    by more than `tolerance` in any metric (or exists on one side only).
#}
{% test totals_match_slots(model, slots, slot_type=none, tolerance=0.001) %}

{%- set metrics = bones2peaches.capacity_metric_names() | reject('equalto', 'sell_through_rate') | list %}
{#- a scheduled run compares the days it rebuilt (test_window.sql): stg_freewheel__slots's
    window, which every mart's window contains -#}
{%- set window_filter = bones2peaches.tested_window_filter(slots) or '1 = 1' %}

with

mart_totals as (

    select
        event_date,
        {{ "'" ~ slot_type ~ "'" if slot_type else 'slot_type' }} as slot_type,
        {%- for metric in metrics %}
        sum({{ metric }}) as {{ metric }}{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ model }}
    where {{ window_filter }}
    group by 1, 2

),

slot_totals as (

    select
        event_date,
        slot_type,
        {%- for metric in metrics %}
        sum({{ metric }}) as {{ metric }}{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ slots }}
    where {{ window_filter }}
    {% if slot_type -%}
        and slot_type = '{{ slot_type }}'
    {% endif -%}
    group by 1, 2

),

compared as (

    select
        coalesce(mart_totals.event_date, slot_totals.event_date) as event_date,
        coalesce(mart_totals.slot_type, slot_totals.slot_type) as slot_type,
        {%- for metric in metrics %}
        mart_totals.{{ metric }} as mart_{{ metric }},
        slot_totals.{{ metric }} as slots_{{ metric }}{{ ',' if not loop.last }}
        {%- endfor %}

    from mart_totals
    full outer join slot_totals
        on mart_totals.event_date = slot_totals.event_date
        and mart_totals.slot_type = slot_totals.slot_type

)

select * from compared
where
    {%- for metric in metrics %}
    {{ 'or ' if not loop.first }}abs(coalesce(mart_{{ metric }}, 0) - coalesce(slots_{{ metric }}, 0)) > {{ tolerance }}
    {%- endfor %}
    or mart_slot_impressions is null
    or slots_slot_impressions is null

{% endtest %}
