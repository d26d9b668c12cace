#!/bin/sh
# Entry point of the scheduled dbt task (infra/bones2peaches.yaml), given the task's command:
#
#   scheduled_dbt.sh build [dbt options]   every DbtSchedule: `dbt source freshness`, then the
#       build, which runs even when the source is stale (the marts still get what did arrive);
#       it fails if either failed, so the stack's task-failure rule reports it, and a stale
#       source prints "ERROR STALE", which the analytics stack's source-stale alarm counts.
#   scheduled_dbt.sh test [dbt options]    weekly (DbtFullTestScheduleRule, with
#       --vars '{test_scope: full}'): every data test over every day.
#
# Unit tests check the SQL, not the data: CI runs them, the schedules do not.
command=$1
[ $# -gt 0 ] && shift
case "$command" in
    build)
        dbt source freshness "$@"
        freshness=$?
        dbt build --exclude-resource-type unit_test "$@" || exit
        exit "$freshness"
        ;;
    test)
        exec dbt test --exclude-resource-type unit_test "$@"
        ;;
    *)
        echo "scheduled_dbt.sh: the first argument must be build or test, not '$command'" >&2
        exit 2
        ;;
esac
