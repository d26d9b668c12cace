{{ config(materialized='table') }}

{%- set history_window_days = var('delivery_health_history_days') | int %}
{%- set min_history_days = var('delivery_health_min_history_days') | int %}
{%- set low_volume_share = var('delivery_health_low_volume_share') | float %}

-- One row per expected hour and source (DECISIONLOG.md, "Delivery health"): every hour from the
-- source's first delivered hour to the newest hour any source delivered. An hour is `missing`
-- when the source delivered no row for it, `low volume` when it delivered fewer than
-- delivery_health_low_volume_share x its usual volume: the median of the same source's rows in the same hour of
-- day over the previous delivery_health_history_days days that had a delivery (judged only with at least
-- delivery_health_min_history_days of them, and never for the newest hour, which may still be arriving).
with

deliveries as (

    select * from {{ ref('dq_freewheel__hourly_deliveries') }}

),

hours_of_day as (

    select event_hour from (
        values {% for hour in range(24) %}({{ hour }}){{ ", " if not loop.last }}{% endfor %}
    ) as hours_of_day (event_hour)

),

ranked_deliveries as (

    select
        network_id,
        event_date,
        event_hour,
        row_number() over (
            partition by network_id order by event_date, event_hour
        ) as rank_in_source,
        row_number() over (order by event_date desc, event_hour desc, network_id) as rank_from_newest

    from deliveries

),

first_hours as (

    select network_id, event_date as first_date, event_hour as first_hour
    from ranked_deliveries
    where rank_in_source = 1

),

newest_hour as (

    select event_date as newest_date, event_hour as newest_hour
    from ranked_deliveries
    where rank_from_newest = 1

),

source_days as (

    select
        first_hours.network_id,
        first_hours.first_date,
        first_hours.first_hour,
        newest_hour.newest_date,
        newest_hour.newest_hour

    from first_hours
    cross join newest_hour

),

expected_hours as (

    select
        source_days.network_id,
        -- already a date on both engines; the cast keeps it one wherever the SQL is translated
        cast(days.day as date) as event_date,
        hours_of_day.event_hour,
        case
            when days.day = source_days.newest_date
                and hours_of_day.event_hour = source_days.newest_hour
                then 1
            else 0
        end as is_newest_hour

    from source_days
    {{ bones2peaches.unnest_days('source_days', 'first_date', 'newest_date') }}
    cross join hours_of_day
    where
        (days.day > source_days.first_date or hours_of_day.event_hour >= source_days.first_hour)
        and (
            days.day < source_days.newest_date
            or hours_of_day.event_hour <= source_days.newest_hour
        )

),

-- the same source and hour of day on each of the previous delivery_health_history_days days it delivered
history as (

    select
        expected_hours.network_id,
        expected_hours.event_date,
        expected_hours.event_hour,
        cast(deliveries.events as double) as events,
        row_number() over (
            partition by expected_hours.network_id, expected_hours.event_date, expected_hours.event_hour
            order by deliveries.events
        ) as events_rank,
        count(*) over (
            partition by expected_hours.network_id, expected_hours.event_date, expected_hours.event_hour
        ) as history_days

    from expected_hours
    inner join deliveries
        on expected_hours.network_id = deliveries.network_id
        and expected_hours.event_hour = deliveries.event_hour
        and deliveries.event_date < expected_hours.event_date
        and deliveries.event_date >= {{ bones2peaches.date_add_days('expected_hours.event_date', -history_window_days) }}

),

-- exact median: the middle value, or the mean of the two middle values (2 x rank in n, n+1, n+2)
usual_volume as (

    select
        network_id,
        event_date,
        event_hour,
        cast(max(history_days) as bigint) as history_days,
        avg(case when 2 * events_rank in (history_days, history_days + 1, history_days + 2) then events end)
            as usual_events

    from history
    group by network_id, event_date, event_hour

),

judged as (

    select
        expected_hours.network_id,
        expected_hours.event_date,
        expected_hours.event_hour,
        cast(coalesce(deliveries.files, 0) as bigint) as files,
        cast(coalesce(deliveries.events, 0) as bigint) as events,
        usual_volume.usual_events,
        cast(coalesce(usual_volume.history_days, 0) as bigint) as history_days,
        deliveries.last_ingested_at,
        case
            when deliveries.events is null then 'missing'
            when expected_hours.is_newest_hour = 0
                and coalesce(usual_volume.history_days, 0) >= {{ min_history_days }}
                and deliveries.events < {{ low_volume_share }} * usual_volume.usual_events
                then 'low volume'
            else 'ok'
        end as delivery_status

    from expected_hours
    left join deliveries
        on expected_hours.network_id = deliveries.network_id
        and expected_hours.event_date = deliveries.event_date
        and expected_hours.event_hour = deliveries.event_hour
    left join usual_volume
        on expected_hours.network_id = usual_volume.network_id
        and expected_hours.event_date = usual_volume.event_date
        and expected_hours.event_hour = usual_volume.event_hour

),

final as (

    select
        network_id,
        event_date,
        event_hour,
        files,
        events,
        usual_events,
        history_days,
        last_ingested_at,
        delivery_status,
        case when delivery_status = 'ok' then 0 else 1 end as is_gap

    from judged

)

select * from final
