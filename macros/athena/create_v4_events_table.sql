{#
    The Glue table of the lake's v4_events (the dbt source freewheel.v4_events on Athena), for a
    deployment without the CloudFormation stack in infra/ (which creates the same table). Partitions
    come from partition projection: nothing to crawl, no MSCK REPAIR, a new hour is queryable as
    soon as `b2p ingest` writes it, and a filter on event_date prunes S3 prefixes before reading.

        dbt run-operation create_v4_events_table --target athena \
            --args '{lake: "s3://my-lake-bucket", projection_start: "2024-01-01"}'

    `lake` defaults to $B2P_LAKE, `database` to $B2P_LAKE_GLUE_DATABASE (the source's schema),
    `projection_start` (first event_date Athena will look for) to 2024-01-01 as in infra/.
    With `dry_run: true` the statement is only printed (to paste in the Athena console).
#}
{% macro create_v4_events_table(lake=none, database=none, projection_start='2024-01-01', dry_run=false) %}
    {{ return(adapter.dispatch('create_v4_events_table', 'bones2peaches')(lake, database, projection_start, dry_run)) }}
{% endmacro %}

{% macro default__create_v4_events_table(lake, database, projection_start, dry_run) %}
    {{ exceptions.raise_compiler_error(
        "create_v4_events_table creates a Glue table for Athena: run it with --target athena. "
        ~ "On DuckDB the source reads the lake's Parquet files directly.") }}
{% endmacro %}

{% macro athena__create_v4_events_table(lake, database, projection_start, dry_run) %}
    {%- set lake = (lake or env_var('B2P_LAKE', '')) | string -%}
    {%- if not lake.startswith('s3://') -%}
        {{ exceptions.raise_compiler_error(
            "create_v4_events_table needs the lake's S3 location: pass --args '{lake: \"s3://bucket[/prefix]\"}' "
            ~ "or set B2P_LAKE (got '" ~ lake ~ "').") }}
    {%- endif -%}
    {%- set database = database or env_var('B2P_LAKE_GLUE_DATABASE', 'bones2peaches_lake') -%}
    {%- set ddl = bones2peaches.v4_events_table_ddl(lake.rstrip('/') ~ '/v4_events', database, projection_start) -%}
    {{ log(ddl, info=True) }}
    {% if not dry_run %}
        {% do run_query(ddl) %}
        {{ log('created (if it did not exist) ' ~ database ~ '.v4_events', info=True) }}
    {% endif %}
{% endmacro %}

{#
    The columns come from macros/contract/v4_events_columns.sql (the log contract, `make contract`).
    event_date is typed `date` (projection type date, format yyyy-MM-dd), so the models' filter
    `event_date >= date '...'` prunes projected partitions; event_hour is an integer 0..23 written
    without zero padding, as `b2p ingest` names the folders.
#}
{% macro v4_events_table_ddl(location, database, projection_start) -%}
CREATE EXTERNAL TABLE IF NOT EXISTS `{{ database }}`.`v4_events` (
{%- for name, type in bones2peaches.v4_events_contract_columns() + bones2peaches.v4_events_lineage_columns() %}
  `{{ name }}` {{ type }}{{ ',' if not loop.last }}
{%- endfor %}
)
PARTITIONED BY (
{%- for name, type in bones2peaches.v4_events_partition_columns() -%}
  `{{ name }}` {{ type }}{{ ', ' if not loop.last }}
{%- endfor -%}
)
STORED AS PARQUET
LOCATION '{{ location }}/'
TBLPROPERTIES (
  'classification'='parquet',
  'projection.enabled'='true',
  'projection.event_date.type'='date',
  'projection.event_date.format'='yyyy-MM-dd',
  'projection.event_date.range'='{{ projection_start }},NOW',
  'projection.event_date.interval'='1',
  'projection.event_date.interval.unit'='DAYS',
  'projection.event_hour.type'='integer',
  'projection.event_hour.range'='0,23',
  'storage.location.template'='{{ location }}/event_date=${event_date}/event_hour=${event_hour}'
)
{%- endmacro %}
