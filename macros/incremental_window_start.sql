{#
    First event_date an incremental run rebuilds: lookback_days before the latest event_date
    already in the model's own table, as a 'YYYY-MM-DD' string (inlined later as a date literal).
    None when the run is not incremental (first build, --full-refresh, unit tests) or the table is
    empty: then the model reads everything.

    Call it only under is_incremental(); it queries {{ this }} at run time.
#}
{% macro incremental_window_start() %}
    {% if not execute %}
        {{ return(none) }}
    {% endif %}
    {% set lookback_days = var('lookback_days') | int %}
    {% set latest_day_query %}
        select cast({{ bones2peaches.date_add_days('max(event_date)', -lookback_days) }} as {{ dbt.type_string() }})
        from {{ this }}
    {% endset %}
    {% set latest_day = run_query(latest_day_query) %}
    {% if latest_day.rows | length == 0 %}
        {{ return(none) }}
    {% endif %}
    {{ return(latest_day.columns[0].values()[0]) }}
{% endmacro %}
