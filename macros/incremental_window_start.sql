{#
    The days a run rebuilds: {'start': 'YYYY-MM-DD', 'end': 'YYYY-MM-DD' or none}, end exclusive,
    or none for "everything" (a first build or --full-refresh without window vars).
    - With `--vars '{window_start: A, window_end: B}'` (window_end optional) the run rebuilds
      exactly [A, B), whether or not the table exists yet: a backfill (`b2p backfill`) walks
      history in such bounded chunks, each under the workgroup's bytes cutoff and Athena's 100
      partitions per statement. With --full-refresh as well, Athena's day_partitions still
      replaces only [A, B); dbt's incremental (DuckDB, Trino) would recreate the table from
      [A, B) alone, so that combination is a compiler error there.
    - Otherwise an incremental run rebuilds from incremental_window_start() on, with no end.
#}
{% macro incremental_window() %}
    {% set requested_end = var('window_end', none) %}
    {% if var('window_start', none) is not none %}
        {% set start = bones2peaches.valid_date_var(var('window_start'), 'window_start') %}
        {% set end = none if requested_end is none else bones2peaches.valid_date_var(requested_end, 'window_end') %}
        {% if end is not none and end <= start %}
            {{ exceptions.raise_compiler_error(
                "var window_end (" ~ end ~ ") must be after window_start (" ~ start ~ "): the window is [window_start, window_end)") }}
        {% endif %}
        {% if model.config.materialized == 'incremental' and should_full_refresh() %}
            {{ exceptions.raise_compiler_error(
                "window_start/window_end with --full-refresh would rebuild " ~ this ~ " from the window only, "
                ~ "losing every other day: run without --full-refresh (the window's days are replaced) "
                ~ "or without the window vars (the whole table is rebuilt)") }}
        {% endif %}
        {{ return({'start': start, 'end': end}) }}
    {% endif %}
    {% if requested_end is not none %}
        {{ exceptions.raise_compiler_error("var window_end needs window_start as well") }}
    {% endif %}
    {% if not bones2peaches.rebuilds_a_window() %}
        {{ return(none) }}
    {% endif %}
    {% set start = bones2peaches.incremental_window_start() %}
    {{ return(none if start is none else {'start': start, 'end': none}) }}
{% endmacro %}

{# Whether this run adds to an existing table (dbt's incremental, or Athena's day_partitions). #}
{% macro rebuilds_a_window() %}
    {% if is_incremental() %}
        {{ return(true) }}
    {% endif %}
    {% if not execute or model.config.materialized != 'day_partitions' or should_full_refresh() %}
        {{ return(false) }}
    {% endif %}
    {% set relation = load_relation(this) %}
    {{ return(relation is not none and not relation.is_view) }}
{% endmacro %}

{# 'YYYY-MM-DD' `days` after the date text `day` (negative: before), computed at compile time. #}
{% macro shift_day(day, days) %}
    {% if day is none %}{{ return(none) }}{% endif %}
    {{ return((modules.datetime.date.fromisoformat(day) + modules.datetime.timedelta(days=days)).isoformat()) }}
{% endmacro %}

{#
    First event_date an incremental run without the window vars rebuilds (incremental_window()
    takes a var window_start as it is, without asking this), as a 'YYYY-MM-DD' string (inlined
    later as a date literal): anchor - lookback_days - 1 day, where the anchor is the latest
    event_date already in the model's own table, capped at today (one event dated years ahead
    must not move the window past the late data of today), and today when the table is empty (a
    clean feed with no orphan ad, no overlay slot yet): the window is always bounded.
    The extra day: an ad late by lookback_days can belong to a slot that started just before
    midnight of the day before, and that slot's row must be rebuilt with it (DECISIONLOG.md).
    None only while dbt parses (execute is false).

    Every incremental model clears its table from this day on before inserting the rebuilt days
    (clear_incremental_window, its pre-hook). It queries the table's event_date values at run
    time: on Athena and Trino from its "$partitions" metadata table (partition_dates), since
    max(event_date) on the table itself reads every day's files.
#}
{% macro incremental_window_start() %}
    {% if not execute %}
        {{ return(none) }}
    {% endif %}
    {% set lookback_days = var('lookback_days') | int %}
    {% set anchor = 'least(coalesce(max(event_date), current_date), current_date)' %}
    {% set window_start_query %}
        select cast({{ bones2peaches.date_add_days(anchor, -(lookback_days + 1)) }} as {{ dbt.type_string() }})
        from {{ bones2peaches.partition_dates(this) }}
    {% endset %}
    {% set window_start = run_query(window_start_query) %}
    {% if window_start.rows | length == 0 or window_start.columns[0].values()[0] is none %}
        {{ exceptions.raise_compiler_error(
            "incremental_window_start: the window query on " ~ this ~ " returned no date") }}
    {% endif %}
    {{ return(window_start.columns[0].values()[0] | string) }}
{% endmacro %}

{# The date var `name` (window_start, window_end) as 'YYYY-MM-DD', or a compiler error. YAML
   reads an unquoted 2026-11-02 as a date, hence the string conversion first. #}
{% macro valid_date_var(requested, name) %}
    {% set text = requested | string | trim %}
    {% set parts = modules.re.fullmatch('([0-9]{4})-([0-9]{2})-([0-9]{2})', text) %}
    {% set year = parts.group(1) | int if parts else 0 %}
    {% set month = parts.group(2) | int if parts else 0 %}
    {% set day = parts.group(3) | int if parts else 0 %}
    {% if not parts or month < 1 or month > 12 or day < 1
        or day > bones2peaches.days_in_month(year, month) %}
        {{ exceptions.raise_compiler_error(
            "var " ~ name ~ " must be a date as YYYY-MM-DD (e.g. --vars '{" ~ name ~ ": 2026-11-02}'), got '"
            ~ text ~ "'"
        ) }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}

{% macro days_in_month(year, month) %}
    {% set first_of_next = modules.datetime.date(year + month // 12, month % 12 + 1, 1) %}
    {{ return((first_of_next - modules.datetime.timedelta(days=1)).day) }}
{% endmacro %}
