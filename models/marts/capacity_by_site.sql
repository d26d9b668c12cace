{{ config(**bones2peaches.incremental_by_day_config()) }}

{{ bones2peaches.capacity_by_dimension_mart(
    dimension_model='stg_freewheel__sites',
    id_column='site_id',
    name_column='site_name',
    label='site',
) }}
