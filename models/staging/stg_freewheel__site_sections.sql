with

source as (

    select * from {{ source('freewheel', 'site_sections') }}

),

renamed as (

    select
        site_section_id,
        site_section_name,
        site_id

    from source

)

select * from renamed
