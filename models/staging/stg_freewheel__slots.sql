{{ config(**bones2peaches.incremental_by_day_config()) }}

{%- set window = bones2peaches.incremental_window() %}

with

-- One read of the window: Trino (Athena) does not materialise a CTE that is referenced twice, so
-- slots and ads come from the same scan and meet in one window partition per slot. An ad is
-- never logged before its slot: the same window start on slots and ads keeps the late ads of
-- every slot in the window (the start is one day before the days late data can reach, see
-- incremental_window_start); ads are read one day past a bounded window's end, for the slots of
-- its last evening, and only the window's slots are kept.
events as (

    select * from {{ ref('stg_freewheel__v4_events') }}
    where event_name in ('slotimpression', 'defaultimpression')
        and {{ bones2peaches.event_date_in_window('event_date', window, end_shift=1) }}

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

-- sales_type comes as delivered: compare it upper-cased and trimmed, empty as missing; a missing
-- sales type is not monetized either, and an ad on a house placement never is, whatever its
-- sales type (house and promo ads are booked as direct sales)
classified_events as (

    select
        events.*,
        case when events.event_name = 'defaultimpression' then 1 else 0 end as is_ad,
        case
            when events.event_name = 'defaultimpression'
                and nullif(upper(trim(events.sales_type)), '') is not null
                and not_monetized_sales_types.sales_type is null
                and house_placements.placement_id is null
                then 1
            else 0
        end as is_monetized

    from events
    left join not_monetized_sales_types
        on nullif(upper(trim(events.sales_type)), '')
            = upper(trim(not_monetized_sales_types.sales_type))
    left join house_placements
        on events.placement_id = house_placements.placement_id

),

-- Per slot, over all its events: its ads' totals, and the rank of each slotImpression. A slot
-- logged more than once with different values keeps its earliest slotImpression; the other
-- columns only break ties so that every run picks the same row.
events_per_slot as (

    select
        *,
        row_number() over (
            partition by transaction_id, slot_id
            order by
                is_ad,
                event_time,
                max_slot_duration desc nulls last,
                time_position_class nulls last,
                site_id nulls last,
                site_section_id nulls last,
                series_id nulls last,
                video_asset_id nulls last,
                network_id nulls last
        ) as impression_rank,
        sum(is_ad) over (partition by transaction_id, slot_id) as ad_impressions,
        sum(is_monetized) over (partition by transaction_id, slot_id) as monetized_impressions,
        coalesce(
            sum(case when is_ad = 1 then ad_duration end)
                over (partition by transaction_id, slot_id),
            0
        ) as delivered_seconds,
        coalesce(
            sum(case when is_monetized = 1 then ad_duration end)
                over (partition by transaction_id, slot_id),
            0
        ) as monetized_ad_seconds

    from classified_events

),

-- Orphan ads (no slotImpression) drop out here, their first event being an ad: they are counted
-- by dq_freewheel__orphan_ads.
slots as (

    select * from events_per_slot
    where impression_rank = 1
        and is_ad = 0
        and {{ bones2peaches.event_date_in_window('event_date', window) }}

),

typed_slots as (

    select
        slots.*,
        coalesce(slot_type_map.slot_type, 'other') as slot_type

    from slots
    -- the seed is edited by hand: compare its classes upper-cased and trimmed, as the events'
    left join slot_type_map
        on slots.time_position_class = upper(trim(slot_type_map.time_position_class))

),

with_capacity as (

    select
        *,
        cast(coalesce(max_slot_duration, delivered_seconds) as double) as capacity_seconds

    from typed_slots

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
        cast(ad_impressions as bigint) as ad_impressions,
        cast(monetized_impressions as bigint) as monetized_impressions,
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
