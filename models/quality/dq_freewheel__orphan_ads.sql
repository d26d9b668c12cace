{{ config(**bones2peaches.incremental_by_day_config()) }}

{%- set window = bones2peaches.incremental_window() %}

-- Incremental by day like the marts: an ad of the rebuilt window is an orphan when no
-- slotImpression of its slot exists in the window or the day before it (slots start before
-- their ads: a slot at 23:59 can have its ads after midnight). One read of the window and the
-- day before, as in stg_freewheel__slots (Trino does not materialise a CTE read twice). A
-- slotImpression arriving later than lookback_days turns its orphans back only on
-- --full-refresh (DECISIONLOG.md).
with

events as (

    select * from {{ ref('stg_freewheel__v4_events') }}
    where event_name in ('slotimpression', 'defaultimpression')
        and {{ bones2peaches.event_date_in_window('event_date', window, start_shift=-1) }}

),

ads as (

    select
        *,
        max(case when event_name = 'slotimpression' then 1 else 0 end)
            over (partition by transaction_id, slot_id) as has_slot_impression

    from events

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
    where ads.event_name = 'defaultimpression'
        and ads.has_slot_impression = 0
        and {{ bones2peaches.event_date_in_window('ads.event_date', window) }}

)

select * from orphan_ads
