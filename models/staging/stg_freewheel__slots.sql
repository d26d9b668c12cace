{{ config(**bones2peaches.incremental_by_day_config()) }}

{%- set window_start = bones2peaches.incremental_window_start() if is_incremental() else none %}

with

-- An ad is never logged before its slot: the same window on slots and ads keeps the late ads of
-- every slot in the window, whatever hour, file or day they were logged in. The window starts one
-- day before the days late data can reach (incremental_window_start), so a slot of 23:59 whose
-- ad is logged after midnight of the first late day is rebuilt with it.
events as (

    select * from {{ ref('stg_freewheel__v4_events') }}
    where {{ bones2peaches.event_date_at_or_after('event_date', window_start) }}

),

slot_type_map as (

    select * from {{ ref('slot_type_map') }}

),

not_monetized_sales_types as (

    select * from {{ ref('not_monetized_sales_types') }}

),

-- the seed is edited by hand: trimmed, typed like the log's ids, each placement once (a
-- placement listed twice must not count its ads twice)
house_placements as (

    select distinct cast(trim(placement_id) as bigint) as placement_id
    from {{ ref('house_placements') }}

),

-- A slot logged more than once with different values keeps its earliest slotImpression; the
-- other columns only break ties so that every run picks the same row.
ranked_slot_impressions as (

    select
        *,
        row_number() over (
            partition by transaction_id, slot_id
            order by
                event_time,
                max_slot_duration desc nulls last,
                time_position_class nulls last,
                site_id nulls last,
                site_section_id nulls last,
                series_id nulls last,
                video_asset_id nulls last,
                network_id nulls last
        ) as impression_rank

    from events
    where event_name = 'slotimpression'

),

slots as (

    select * from ranked_slot_impressions
    where impression_rank = 1

),

ads as (

    select
        transaction_id,
        slot_id,
        ad_duration,
        placement_id,
        -- sales_type comes as delivered: compare it upper-cased and trimmed, empty as missing
        nullif(upper(trim(sales_type)), '') as sales_type

    from events
    where event_name = 'defaultimpression'

),

-- a missing sales type is not monetized either; an ad on a house placement never is, whatever
-- its sales type (house and promo ads are booked as direct sales)
ads_classified as (

    select
        ads.transaction_id,
        ads.slot_id,
        ads.ad_duration,
        case
            when house_placements.placement_id is not null then 0
            when ads.sales_type is not null and not_monetized_sales_types.sales_type is null
                then 1
            else 0
        end as is_monetized

    from ads
    left join not_monetized_sales_types
        on ads.sales_type = upper(trim(not_monetized_sales_types.sales_type))
    left join house_placements
        on ads.placement_id = house_placements.placement_id

),

ads_per_slot as (

    select
        transaction_id,
        slot_id,
        count(*) as ad_impressions,
        sum(is_monetized) as monetized_impressions,
        coalesce(sum(ad_duration), 0) as delivered_seconds,
        coalesce(sum(case when is_monetized = 1 then ad_duration end), 0) as monetized_ad_seconds

    from ads_classified
    group by transaction_id, slot_id

),

-- Orphan ads (no slotImpression) drop out here: they are counted by dq_freewheel__orphan_ads.
slots_with_ads as (

    select
        slots.*,
        coalesce(slot_type_map.slot_type, 'other') as slot_type,
        cast(coalesce(ads_per_slot.ad_impressions, 0) as bigint) as ad_impressions,
        cast(coalesce(ads_per_slot.monetized_impressions, 0) as bigint) as monetized_impressions,
        coalesce(ads_per_slot.delivered_seconds, 0) as delivered_seconds,
        coalesce(ads_per_slot.monetized_ad_seconds, 0) as monetized_ad_seconds

    from slots
    left join ads_per_slot
        on slots.transaction_id = ads_per_slot.transaction_id
        and slots.slot_id = ads_per_slot.slot_id
    -- the seed is edited by hand: compare its classes upper-cased and trimmed, as the events'
    left join slot_type_map
        on slots.time_position_class = upper(trim(slot_type_map.time_position_class))

),

with_capacity as (

    select
        *,
        cast(coalesce(max_slot_duration, delivered_seconds) as double) as capacity_seconds

    from slots_with_ads

),

final as (

    select
        ----------  ids
        transaction_id,
        slot_id,

        ----------  when
        event_time,
        event_hour,

        ----------  what
        slot_type,
        time_position_class,
        site_id,
        site_section_id,
        series_id,
        video_asset_id,
        network_id,
        max_slot_duration,

        ----------  metrics (models/docs.md)
        cast(1 as bigint) as slot_impressions,
        ad_impressions,
        monetized_impressions,
        capacity_seconds,
        cast(delivered_seconds as double) as delivered_seconds,
        cast(least(monetized_ad_seconds, capacity_seconds) as double) as monetized_seconds,
        cast(capacity_seconds - least(monetized_ad_seconds, capacity_seconds) as double)
            as unsold_seconds,

        ----------  partition: last (Hive tables on Athena need it there)
        event_date

    from with_capacity

)

select * from final
