{#
    One dbt run at a time on a deployment (a long backfill and the 6-hourly schedule would
    otherwise rebuild the same days with the same temporary tables: doubled rows).
    on-run-start takes the lock, on-run-end gives it back (dbt_project.yml).

    Athena: the lock is a Glue table, `<schema>.b2p_run_lock`, created by Athena DDL: Glue's
    CreateTable is atomic, so of two runs that start together one creates it and the other fails
    (AlreadyExistsException); a run that finds it held stops with a message naming the holder.
    A lock older than var run_lock_hours (default 12; a killed task never releases it) is taken
    over. `dbt run-operation break_run_lock --target athena` removes it by hand.
    DuckDB: the warehouse file's own lock already refuses a second writer.
#}
{# Only the commands that write (or test what is written) take it: not compile or docs. #}
{% macro run_lock_applies() %}
    {{ return(execute and flags.WHICH in ('build', 'run', 'seed', 'snapshot', 'test')) }}
{% endmacro %}

{% macro acquire_run_lock() %}
    {% if bones2peaches.run_lock_applies() %}
        {% do adapter.dispatch('acquire_run_lock', 'bones2peaches')() %}
    {% endif %}
    {{ return('') }}
{% endmacro %}

{% macro release_run_lock() %}
    {% if bones2peaches.run_lock_applies() %}
        {% do adapter.dispatch('release_run_lock', 'bones2peaches')() %}
    {% endif %}
    {{ return('') }}
{% endmacro %}

{% macro default__acquire_run_lock() %}{% endmacro %}
{% macro default__release_run_lock() %}{% endmacro %}

{% macro run_lock_relation() %}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='b2p_run_lock', type='table')) }}
{% endmacro %}

{% macro athena__acquire_run_lock() %}
    {% set lock = bones2peaches.run_lock_relation() %}
    {% set held = adapter.get_glue_table(lock) %}
    {% if held %}
        {% set holder = held['Table'].get('Parameters', {}) %}
        {% set started = modules.datetime.datetime.fromisoformat(holder.get('started_at', '1970-01-01T00:00:00+00:00')) %}
        {% set age_hours = (run_started_at - started).total_seconds() / 3600 %}
        {% if age_hours < var('run_lock_hours', 12) | float %}
            {{ exceptions.raise_compiler_error(
                "another dbt run holds the run lock " ~ lock ~ " (invocation " ~ holder.get('invocation_id')
                ~ ", started " ~ holder.get('started_at') ~ "): this run stops without building anything. "
                ~ "If that run died, wait " ~ var('run_lock_hours', 12) ~ " hours from its start or run "
                ~ "`dbt run-operation break_run_lock --target athena`.") }}
        {% endif %}
        {{ log("taking over the run lock of invocation " ~ holder.get('invocation_id') ~ ", started " ~ holder.get('started_at') ~ " (older than run_lock_hours)", info=True) }}
        {% do run_query("drop table " ~ lock.render_hive()) %}
    {% endif %}
    {% do run_query(
        "create external table " ~ lock.render_hive() ~ " (`invocation_id` string) location '"
        ~ target.s3_data_dir.rstrip('/') ~ "/" ~ target.schema ~ "/_run_lock/' tblproperties ("
        ~ "'invocation_id'='" ~ invocation_id ~ "', 'started_at'='" ~ run_started_at.isoformat() ~ "')") %}
    {{ log("run lock " ~ lock ~ " taken by invocation " ~ invocation_id, info=True) }}
{% endmacro %}

{% macro athena__release_run_lock() %}
    {% set lock = bones2peaches.run_lock_relation() %}
    {% set held = adapter.get_glue_table(lock) %}
    {% if held and held['Table'].get('Parameters', {}).get('invocation_id') == invocation_id %}
        {% do run_query("drop table " ~ lock.render_hive()) %}
    {% endif %}
{% endmacro %}

{# By hand, after a run that died: removes the lock whoever holds it. #}
{% macro break_run_lock() %}
    {% set lock = bones2peaches.run_lock_relation() %}
    {% if adapter.get_glue_table(lock) %}
        {% do run_query("drop table " ~ lock.render_hive()) %}
        {{ log("removed the run lock " ~ lock, info=True) }}
    {% else %}
        {{ log("no run lock " ~ lock, info=True) }}
    {% endif %}
{% endmacro %}
