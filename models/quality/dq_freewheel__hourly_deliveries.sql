{{ config(**bones2peaches.incremental_by_day_config()) }}

{%- set window = bones2peaches.incremental_window() %}

-- What each source delivered per hour: files and rows as they are in the lake (duplicates
-- included: this is delivered volume, not distinct events). Incremental by day like the marts;
-- an hour depends on nothing but its own rows, so the window needs no extra day.
with

lake_rows as (

    select * from {{ ref('stg_freewheel__v4_event_lineage') }}
    where {{ bones2peaches.event_date_in_window('event_date', window) }}

),

hourly as (

    select
        -- rows without a network id are a source of their own (-1), not dropped
        coalesce(network_id, -1) as network_id,
        event_hour,
        cast(count(distinct source_file) as bigint) as files,
        cast(count(*) as bigint) as events,
        max(ingested_at) as last_ingested_at,
        event_date

    from lake_rows
    group by coalesce(network_id, -1), event_date, event_hour

)

select * from hourly
