{{ config(**bones2peaches.incremental_by_day_config()) }}

{{ bones2peaches.capacity_by_hour_mart(slot_type='midroll') }}
