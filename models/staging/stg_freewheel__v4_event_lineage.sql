-- One row per lake row, as delivered (duplicates kept): where it came from and when it was
-- ingested. The delivery-health models count files and rows with it; nothing here is a metric.
with

source as (

    select * from {{ source('freewheel', 'v4_events') }}

),

renamed as (

    select
        ----------  the delivering feed (DECISIONLOG.md: what a "source" is)
        network_id,

        ----------  lineage
        source_file,
        source_line,
        ingested_at,

        ----------  partitions
        cast(event_hour as integer) as event_hour,
        cast(event_date as date) as event_date

    from source

)

select * from renamed
