{#
    The incremental window's filter on a partition column. `start_date` is a 'YYYY-MM-DD' string
    known at compile time and inlined as a date literal, so the engine can prune partitions of the
    raw source before reading them (a subquery or a join would make Athena scan every partition).
    With start_date none (first build, full refresh) the filter keeps everything.
#}
{% macro event_date_at_or_after(column, start_date) %}
    {{ return(adapter.dispatch('event_date_at_or_after', 'bones2peaches')(column, start_date)) }}
{% endmacro %}

{#
    DuckDB and Athena take the same SQL today, so there is no override; an engine that needs
    another literal form or a cast on the partition column adds `<adapter>__event_date_at_or_after`.
    DuckDB: hive_partitioning pushes the comparison down to the event_date=... folders.
    Athena: the Glue table's event_date partition column must be typed `date`
    (projection.event_date.type=date, format yyyy-MM-dd) for the comparison to prune projected
    partitions; a `string` partition column would not compare with a date literal.
#}
{% macro default__event_date_at_or_after(column, start_date) -%}
    {%- if start_date is none -%}
        1 = 1
    {%- else -%}
        {{ column }} >= date '{{ start_date }}'
    {%- endif -%}
{%- endmacro %}


{#
    The window's filter on a partition column: `column` in [start, end), both literals (end
    none: no upper bound; window none: no filter). `start_shift`/`end_shift` move the bounds by
    whole days (the slots model reads ads one day past the end; the orphan check reads slots one
    day before the start).
#}
{% macro event_date_in_window(column, window, start_shift=0, end_shift=0) %}
    {%- if window is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set start = bones2peaches.shift_day(window['start'], start_shift) -%}
    {%- set end = bones2peaches.shift_day(window['end'], end_shift) -%}
    {%- set lower = bones2peaches.event_date_at_or_after(column, start) -%}
    {%- if end is none -%}
        {{ return(lower) }}
    {%- endif -%}
    {{ return(lower ~ " and " ~ column ~ " < date '" ~ end ~ "'") }}
{% endmacro %}
