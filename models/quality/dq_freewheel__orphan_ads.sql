-- Rebuilt whole on every run: an ad is an orphan only if no slotImpression of its slot exists
-- anywhere in the lake, so no partition or incremental window may limit the check.
with

events as (

    select * from {{ ref('stg_freewheel__v4_events') }}

),

slots as (

    select distinct
        transaction_id,
        slot_id

    from events
    where event_name = 'slotimpression'

),

ads as (

    select * from events
    where event_name = 'defaultimpression'

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
        ads.event_date

    from ads
    left join slots
        on ads.transaction_id = slots.transaction_id
        and ads.slot_id = slots.slot_id
    where slots.transaction_id is null

)

select * from orphan_ads
