{{ config(**bones2peaches.incremental_by_day_config()) }}

{%- set window = bones2peaches.incremental_window() %}

-- Incremental by day like the marts: an ad of the rebuilt window is an orphan when
-- stg_freewheel__slots has no slot of its (transaction_id, slot_id) in the window or the day
-- before it (slots start before their ads: a slot at 23:59 can have its ads after midnight), i.e.
-- exactly the ads no mart counts. One read of the window's ads from the lake, and the two id
-- columns of the slots already built (a hash anti-join, instead of a window function over every
-- slot and ad event of the window). A slotImpression arriving later than lookback_days turns its
-- orphans back only on --full-refresh (DECISIONLOG.md).
with

ads as (

    select * from {{ ref('stg_freewheel__v4_events') }}
    where event_name = 'defaultimpression'
        and {{ bones2peaches.event_date_in_window('event_date', window) }}

),

slots as (

    select transaction_id, slot_id from {{ ref('stg_freewheel__slots') }}
    where {{ bones2peaches.event_date_in_window('event_date', window, start_shift=-1) }}

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
    where slots.slot_id is null

)

select * from orphan_ads
