#!/bin/sh
# The scheduled dbt task (infra/bones2peaches.yaml runs it with `--target athena`): first
# `dbt source freshness`, then the build, which runs even when the source is stale (the marts
# still get what did arrive). It fails if either failed, so the stack's task-failure rule
# reports it; a stale source also prints "ERROR STALE", which the analytics stack's
# source-stale alarm counts. Unit tests check the SQL, not the data: CI runs them, this does not.
dbt source freshness "$@"
freshness=$?
dbt build --exclude-resource-type unit_test "$@" || exit
exit "$freshness"
