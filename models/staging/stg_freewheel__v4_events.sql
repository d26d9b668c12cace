with

source as (

    select * from {{ source('freewheel', 'v4_events') }}

),

-- A record delivered twice (same values in every contract column) is one event; the lineage
-- columns (source_file, source_line, ingested_at, extra_columns) are left out so such copies
-- collapse. The contract's columns: macros/contract/v4_events_columns.sql (`make contract`).
deduplicated as (

    select distinct
        {%- for column, _ in bones2peaches.v4_events_contract_columns() %}
        {{ column }},
        {%- endfor %}
        event_date,
        event_hour

    from source

),

renamed as (

    select
        ----------  ids
        transaction_id,
        slot_id,
        site_id,
        site_section_id,
        series_id,
        video_asset_id,
        network_id,
        ad_id,
        creative_id,
        placement_id,
        ad_unit_id,

        ----------  strings: the log delivers them in any case
        lower(trim(event_name)) as event_name,
        -- as delivered (`i`, `c`, ...): kept for queries, unused by the marts
        event_type,
        nullif(upper(trim(time_position_class)), '') as time_position_class,
        -- as delivered: what is monetized is decided in stg_freewheel__slots, with its seed
        sales_type,

        ----------  numerics
        max_slot_duration,
        ad_duration,

        ----------  timestamps
        event_time,
        cast(event_hour as integer) as event_hour,
        cast(event_date as date) as event_date

    from deduplicated

)

select * from renamed
