{{ config(**bones2peaches.incremental_by_day_config()) }}

{{ bones2peaches.capacity_by_dimension_mart(
    dimension_model='stg_freewheel__series',
    id_column='series_id',
    name_column='series_name',
    label='series',
) }}
