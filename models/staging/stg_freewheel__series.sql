with

source as (

    select * from {{ source('freewheel', 'series') }}

),

renamed as (

    select
        series_id,
        series_name

    from source

)

select * from renamed
