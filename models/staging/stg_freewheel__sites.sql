with

source as (

    select * from {{ source('freewheel', 'sites') }}

),

renamed as (

    select
        site_id,
        site_name

    from source

)

select * from renamed
