{#
    The Glue tables of the lake's dimension snapshots (the dbt sources freewheel.sites,
    site_sections and series on Athena), for a deployment without the CloudFormation stack in
    infra/ (which creates the same tables). Each is one Parquet file that `b2p dimensions`
    replaces, under <lake>/dimensions/<table>/, unpartitioned.

        dbt run-operation create_dimension_tables --target athena \
            --args '{lake: "s3://my-lake-bucket"}'

    Same arguments and defaults as create_v4_events_table (`lake` from $B2P_LAKE, `database` from
    $B2P_LAKE_GLUE_DATABASE, `dry_run: true` only prints the statements).
#}
{% macro create_dimension_tables(lake=none, database=none, dry_run=false) %}
    {{ return(adapter.dispatch('create_dimension_tables', 'bones2peaches')(lake, database, dry_run)) }}
{% endmacro %}

{% macro default__create_dimension_tables(lake, database, dry_run) %}
    {{ exceptions.raise_compiler_error(
        "create_dimension_tables creates Glue tables for Athena: run it with --target athena. "
        ~ "On DuckDB the sources read the lake's Parquet files directly.") }}
{% endmacro %}

{% macro athena__create_dimension_tables(lake, database, dry_run) %}
    {%- set lake = (lake or env_var('B2P_LAKE', '')) | string -%}
    {%- if not lake.startswith('s3://') -%}
        {{ exceptions.raise_compiler_error(
            "create_dimension_tables needs the lake's S3 location: pass --args '{lake: \"s3://bucket[/prefix]\"}' "
            ~ "or set B2P_LAKE (got '" ~ lake ~ "').") }}
    {%- endif -%}
    {%- set database = database or env_var('B2P_LAKE_GLUE_DATABASE', 'bones2peaches_lake') -%}
    {%- for table, columns in bones2peaches.dimension_glue_columns().items() -%}
        {%- set ddl = bones2peaches.dimension_table_ddl(
            table, columns, lake.rstrip('/') ~ '/dimensions/' ~ table, database) -%}
        {{ log(ddl, info=True) }}
        {% if not dry_run %}
            {% do run_query(ddl) %}
            {{ log('created (if it did not exist) ' ~ database ~ '.' ~ table, info=True) }}
        {% endif %}
    {%- endfor -%}
{% endmacro %}

{# Table -> column names and Hive types, as infra/bones2peaches.yaml (and `b2p dimensions`). #}
{% macro dimension_glue_columns() %}
    {{ return({
        'sites': [('site_id', 'bigint'), ('site_name', 'string')],
        'site_sections': [
            ('site_section_id', 'bigint'), ('site_section_name', 'string'), ('site_id', 'bigint'),
        ],
        'series': [('series_id', 'bigint'), ('series_name', 'string')],
    }) }}
{% endmacro %}

{% macro dimension_table_ddl(table, columns, location, database) -%}
CREATE EXTERNAL TABLE IF NOT EXISTS `{{ database }}`.`{{ table }}` (
{%- for name, type in columns %}
  `{{ name }}` {{ type }}{{ ',' if not loop.last }}
{%- endfor %}
)
STORED AS PARQUET
LOCATION '{{ location }}/'
TBLPROPERTIES (
  'classification'='parquet'
)
{%- endmacro %}
