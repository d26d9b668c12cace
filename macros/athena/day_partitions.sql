{#
    Athena materialization of the incremental-by-day models: replace the window's days so that
    readers see each day either as it was or as it is now, never missing or doubled, and a run
    that fails at any point leaves the previous data in place.

    insert_overwrite deletes the days first and inserts them after: in between (and after a
    failure there) readers see the days missing, and an INSERT that fails part-way leaves files
    in a partition Glue does not list, which the next insert then doubles. Here instead:

    1. delete the prefixes an earlier run superseded (recorded on the table as b2p.superseded):
       deleting them a run later gives the queries that were reading them time to finish;
    2. CTAS the window's rows into a stage table at a new prefix of the table,
       <root>/v=<run>/event_date=<day>/, which nothing reads yet (a failure here leaves only
       files no partition points to);
    3. point each day's Glue partition at its new prefix (ALTER TABLE … PARTITION … SET LOCATION:
       one atomic catalog update per day; ADD PARTITION for new days; DROP PARTITION for days of
       the window that no longer have rows, e.g. after a correction);
    4. record the old prefixes as superseded and the window (the data tests read it), drop the
       stage table from Glue (its files are now the table's).
    Before step 3 the stage's columns are checked against the table's (on_schema_change, 'fail'
    by incremental_by_day_config): a model whose columns changed fails, its stage removed,
    the table untouched.
    A first build (or --full-refresh) writes the table at a new prefix of its own in one CTAS.
    Either way the model's descriptions then go to Glue (persist_docs, as dbt-athena's own
    materializations do).
    The table's root is <s3_data_dir>/<schema>/<table>; nothing else writes there.
#}
{% materialization day_partitions, adapter='athena' -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing = load_relation(this) -%}
    {%- set window = bones2peaches.incremental_window() -%}
    {%- set root = target.s3_data_dir.rstrip('/') ~ '/' ~ this.schema ~ '/' ~ this.identifier -%}
    {%- set version = 'v=' ~ run_started_at.strftime('%Y%m%dT%H%M%S') ~ '-' ~ invocation_id[:8] -%}
    {%- set location = root ~ '/' ~ version -%}

    {{ run_hooks(pre_hooks) }}

    {%- if existing is not none and window is none -%}
        {#- --full-refresh: the whole table is rebuilt -#}
        {% do drop_relation(existing) %}
        {%- set existing = none -%}
    {%- endif -%}

    {%- if existing is none -%}
        {#- nothing references anything under the root of a table that does not exist -#}
        {% do adapter.delete_from_s3(root) %}
        {% call statement('main') -%}
            {{ bones2peaches.day_partitions_ctas(target_relation, location, sql) }}
        {%- endcall %}
        {% if window is not none %}
            {% do bones2peaches.record_day_partitions(target_relation, window, []) %}
        {% endif %}
    {%- else -%}
        {% do bones2peaches.delete_superseded(target_relation) %}
        {%- set stage = this.incorporate(path={'identifier': this.identifier ~ '__b2p_stage'}, type='table') -%}
        {%- if load_relation(stage) is not none -%}
            {#- an earlier run died after staging: its files may already be the table's -#}
            {% do run_query('drop table ' ~ stage.render_hive()) %}
        {%- endif -%}
        {% call statement('main') -%}
            {{ bones2peaches.day_partitions_ctas(stage, location, sql) }}
        {%- endcall %}
        {% do bones2peaches.check_stage_schema(stage, existing, location) %}
        {%- set new_days = bones2peaches.stage_days(stage) -%}
        {%- set old_prefixes = bones2peaches.window_prefixes(target_relation, window) -%}
        {%- set added = [] -%}
        {%- for day in new_days -%}
            {%- set new_location = location ~ '/event_date=' ~ day ~ '/' -%}
            {%- if day in old_prefixes -%}
                {% do run_query("alter table " ~ target_relation.render_hive() ~ " partition (event_date='"
                    ~ day ~ "') set location '" ~ new_location ~ "'") %}
            {%- else -%}
                {% do added.append("partition (event_date='" ~ day ~ "') location '" ~ new_location ~ "'") %}
            {%- endif -%}
        {%- endfor -%}
        {%- for batch in added | batch(50) -%}
            {% do run_query("alter table " ~ target_relation.render_hive() ~ " add if not exists " ~ batch | join(' ')) %}
        {%- endfor -%}
        {%- set emptied = old_prefixes.keys() | reject('in', new_days) | list -%}
        {%- for batch in emptied | batch(25) -%}
            {%- set specs = [] -%}
            {%- for day in batch -%}
                {% do specs.append("partition (event_date='" ~ day ~ "')") %}
            {%- endfor -%}
            {% do run_query("alter table " ~ target_relation.render_hive() ~ " drop if exists " ~ specs | join(', ')) %}
        {%- endfor -%}
        {% do bones2peaches.record_day_partitions(target_relation, window, old_prefixes.values() | unique | list) %}
        {% do run_query('drop table ' ~ stage.render_hive()) %}
    {%- endif -%}

    {% do persist_docs(target_relation, model) %}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}


{% macro day_partitions_ctas(relation, location, sql) -%}
create table {{ relation }}
with (
    table_type = 'hive',
    is_external = true,
    external_location = '{{ location }}/',
    partitioned_by = ARRAY['event_date'],
    format = 'parquet',
    write_compression = 'zstd'
)
as
{{ sql }}
{%- endmacro %}


{# The event_date values of the stage's partitions, as 'YYYY-MM-DD'. #}
{% macro stage_days(stage) %}
    {% set result = run_query('select cast(event_date as varchar) from ' ~ bones2peaches.partition_dates(stage)) %}
    {{ return(result.columns[0].values() | map('string') | list) }}
{% endmacro %}


{#
    on_schema_change against the stage, before any partition moves. 'fail' runs dbt's own check
    (check_for_schema_changes, what process_schema_changes runs) first, so that a changed model
    can drop its stage and delete the stage's files (nothing points at them yet) before it
    fails; the other values go to process_schema_changes as they are ('ignore': nothing).
#}
{% macro check_stage_schema(stage, target_relation, location) %}
    {%- set on_schema_change = incremental_validate_on_schema_change(config.get('on_schema_change'), default='ignore') -%}
    {%- if on_schema_change != 'fail' -%}
        {% do process_schema_changes(on_schema_change, stage, target_relation) %}
        {{ return(none) }}
    {%- endif -%}
    {%- set changes = check_for_schema_changes(stage, target_relation) -%}
    {%- if not changes['schema_changed'] -%}
        {{ return(none) }}
    {%- endif -%}
    {% do run_query('drop table ' ~ stage.render_hive()) %}
    {% do adapter.delete_from_s3(location ~ '/') %}
    {{ exceptions.raise_compiler_error(
        "the columns of " ~ this ~ " changed (on_schema_change 'fail'): nothing was replaced. "
        ~ "New in the model: [" ~ changes['source_not_in_target'] | map(attribute='name') | join(', ') ~ "]; "
        ~ "only in the table: [" ~ changes['target_not_in_source'] | map(attribute='name') | join(', ') ~ "]; "
        ~ "new types: [" ~ changes['new_target_types'] | map('string') | join(', ') ~ "]. "
        ~ "Rebuild the table with `dbt build --full-refresh --select " ~ model.name ~ "`.") }}
{% endmacro %}


{# Day -> the prefix its files are under now, for the target's days in the window. #}
{% macro window_prefixes(relation, window) %}
    {% set result = run_query(
        "select distinct cast(event_date as varchar), regexp_replace(\"$path\", '/[^/]*$', '/') from "
        ~ relation ~ " where " ~ bones2peaches.event_date_in_window('event_date', window)) %}
    {% set prefixes = {} %}
    {% for row in result.rows %}
        {% do prefixes.update({row[0] | string: row[1]}) %}
    {% endfor %}
    {{ return(prefixes) }}
{% endmacro %}


{# Deletes the prefixes an earlier run superseded, then forgets them. #}
{% macro delete_superseded(relation) %}
    {% set table = adapter.get_glue_table(relation) %}
    {% set recorded = (table or {}).get('Table', {}).get('Parameters', {}).get('b2p.superseded', '') %}
    {% for prefix in recorded.split(' ') if prefix %}
        {% do adapter.delete_from_s3(prefix) %}
    {% endfor %}
{% endmacro %}


{# The window the data tests read, and the prefixes the next run deletes. #}
{% macro record_day_partitions(relation, window, superseded) %}
    {% do run_query(
        "alter table " ~ relation.render_hive() ~ " set tblproperties ("
        ~ "'b2p.window_start'='" ~ window['start'] ~ "', "
        ~ "'b2p.window_end'='" ~ (window['end'] or '') ~ "', "
        ~ "'b2p.superseded'='" ~ superseded | join(' ') ~ "')") %}
{% endmacro %}
