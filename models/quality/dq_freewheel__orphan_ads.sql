{{ config(**bones2peaches.incremental_by_day_config()) }}

{%- set window_start = bones2peaches.incremental_window_start() if is_incremental() else none %}
{#- Slots start before their ads: a slot at 23:59 can have its ads after midnight, so the slots
    are read from the day before the window. A literal date, computed here, keeps the filter
    prunable on Athena. -#}
{%- set slots_start = none if window_start is none else (
    modules.datetime.date.fromisoformat(window_start) - modules.datetime.timedelta(days=1)
).isoformat() %}

-- Incremental by day like the marts: an ad of the rebuilt window is an orphan when no
-- slotImpression of its slot exists in the window or the day before it. A slotImpression
-- arriving later than lookback_days turns its orphans back only on --full-refresh
-- (DECISIONLOG.md).
with

slots as (

    select distinct
        transaction_id,
        slot_id

    from {{ ref('stg_freewheel__v4_events') }}
    where
        event_name = 'slotimpression'
        and {{ bones2peaches.event_date_at_or_after('event_date', slots_start) }}

),

ads as (

    select * from {{ ref('stg_freewheel__v4_events') }}
    where
        event_name = 'defaultimpression'
        and {{ bones2peaches.event_date_at_or_after('event_date', window_start) }}

),

orphan_ads as (

    select
        ----------  ids
        ads.transaction_id,
        ads.slot_id,
        ads.ad_id,
        ads.creative_id,
        ads.site_id,
        ads.site_section_id,
        ads.series_id,
        ads.video_asset_id,
        ads.network_id,

        ----------  the ad
        ads.time_position_class,
        ads.sales_type,
        ads.ad_duration,

        ----------  when
        ads.event_time,
        ads.event_hour,

        ----------  partition: last (Hive tables on Athena need it there)
        ads.event_date

    from ads
    left join slots
        on ads.transaction_id = slots.transaction_id
        and ads.slot_id = slots.slot_id
    where slots.transaction_id is null

)

select * from orphan_ads
