{{ config(**bones2peaches.incremental_by_day_config()) }}

{{ bones2peaches.capacity_by_dimension_mart(
    dimension_model='stg_freewheel__site_sections',
    id_column='site_section_id',
    name_column='site_section_name',
    label='site section',
    parent={
        'dimension_model': 'stg_freewheel__sites',
        'id_column': 'site_id',
        'name_column': 'site_name',
        'label': 'site',
    },
) }}
