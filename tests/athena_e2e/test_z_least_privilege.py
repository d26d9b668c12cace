"""Least privilege, measured: every AWS call the planner, the worker and the dbt task made in
this package's runs (ingest, first build, incremental, correction), as the AWS stand-in
recorded and authorized it against the role in infra/bones2peaches.yaml.

Runs last (file name): it reads every call of the session. Calls Trino makes for Athena are the
dbt task's (Athena acts with its caller's permissions); Glue column-statistics calls are Trino's
own (Athena makes none) and are left out.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.athena_e2e.harness import AthenaStack
from tests.support.iam import Policy, Request
from tests.support.stack import ROLE_KEYS

pytestmark = pytest.mark.e2e

# Grants no offline run can use, and why they stay (role, statement, action). A grant used in
# the runs must not be here, and an unused grant not here fails the test: remove it from the
# template or say here why it stays.
LAMBDA_RUNTIME = "the Lambda runtime writes the function's logs, not the handler"
ATHENA_RESULTS = (
    "Athena's documented needs on the query-results location (it lists, locates, reads back "
    "for GetQueryResults and aborts multipart uploads as the caller); the stand-in writes "
    "results with one PUT and serves them from memory"
)
CRASH_PATHS = (
    "the worker's crash recovery and re-deliveries that leave a partition (HEAD/GET of an "
    "earlier attempt's outputs, deleting stale ones, aborting a multipart upload); "
    "tests/ingest/test_crash_safety.py runs those paths, this run only when its correction does"
)
EMPTIED_DAY = (
    "a run drops the partition of a day left without rows (a correction that empties a day: "
    "ALTER TABLE DROP PARTITION); whether the sample's correction empties one varies"
)
TABLE_VERSIONS = (
    "dbt-athena expires a replaced view's or seed's older Glue table versions "
    "(versions_to_keep 1); whether a run's replacements leave any varies with what it runs"
)
DATA_DEPENDENT = {CRASH_PATHS, EMPTIED_DAY, TABLE_VERSIONS}
JUSTIFIED_UNUSED = {
    ("PlannerRole", "WriteOwnLogs", "logs:CreateLogStream"): LAMBDA_RUNTIME,
    ("PlannerRole", "WriteOwnLogs", "logs:PutLogEvents"): LAMBDA_RUNTIME,
    ("WorkerRole", "WriteOwnLogs", "logs:CreateLogStream"): LAMBDA_RUNTIME,
    ("WorkerRole", "WriteOwnLogs", "logs:PutLogEvents"): LAMBDA_RUNTIME,
    ("WorkerRole", "ConsumeQueue", "sqs:GetQueueAttributes"): "Lambda's SQS poller needs it",
    ("WorkerRole", "ReadAliases", "s3:GetObject"): "only with AliasesKey set; unset here",
    ("WorkerRole", "WriteLakeEventsAndIngestRecords", "s3:GetObject"): CRASH_PATHS,
    ("WorkerRole", "WriteLakeEventsAndIngestRecords", "s3:DeleteObject"): CRASH_PATHS,
    ("WorkerRole", "WriteLakeEventsAndIngestRecords", "s3:AbortMultipartUpload"): CRASH_PATHS,
    ("DbtTaskRole", "ManageTablesInDatabase", "glue:GetDatabase"): (
        "dbt-athena's check_schema_exists, on a run that has to create its schema"
    ),
    ("DbtTaskRole", "ManageTablesInDatabase", "glue:BatchDeletePartition"): EMPTIED_DAY,
    ("DbtTaskRole", "ManageTablesInDatabase", "glue:DeleteTableVersion"): TABLE_VERSIONS,
    ("DbtTaskRole", "RunQueriesInWorkGroup", "athena:StopQueryExecution"): (
        "dbt cancels its running queries when it is interrupted"
    ),
    ("DbtTaskRole", "WriteModelData", "s3:AbortMultipartUpload"): (
        "a failed multipart seed upload or CTAS write is aborted"
    ),
    ("DbtTaskRole", "WriteQueryResults", "s3:GetObject"): ATHENA_RESULTS,
    ("DbtTaskRole", "WriteQueryResults", "s3:AbortMultipartUpload"): ATHENA_RESULTS,
    ("DbtTaskRole", "WriteQueryResults", "s3:ListMultipartUploadParts"): ATHENA_RESULTS,
    ("DbtTaskRole", "ListQueryResults", "s3:ListBucket"): ATHENA_RESULTS,
    ("DbtTaskRole", "ListQueryResults", "s3:ListBucketMultipartUploads"): ATHENA_RESULTS,
    ("DbtTaskRole", "LocateBuckets", "s3:GetBucketLocation"): ATHENA_RESULTS,
    ("DbtTaskRole", "LakeFormationDataAccess", "lakeformation:GetDataAccess"): (
        "Athena calls it only where Lake Formation governs the lake (not offline)"
    ),
    ("PlannerRole", "AssumeSourceRole", "sts:AssumeRole"): "only with SourceRoleArn set",
    ("WorkerRole", "AssumeSourceRole", "sts:AssumeRole"): "only with SourceRoleArn set",
}


def role_calls(stack: AthenaStack) -> dict[str, list[dict]]:
    calls: dict[str, list[dict]] = defaultdict(list)
    for call in stack.standin.calls():
        measured = not call["engine_internal"] and not call["injected_fault"]
        if call["principal"] in ROLE_KEYS and measured:
            calls[call["principal"]].append(call)
    return calls


@pytest.fixture(scope="module")
def recorded(athena_stack: AthenaStack) -> dict[str, list[dict]]:
    calls = role_calls(athena_stack)
    if not calls.get("DbtTaskRole"):
        pytest.skip("no dbt run in this session to measure")
    return calls


def test_every_recorded_call_is_allowed_by_its_role(recorded: dict[str, list[dict]]) -> None:
    denied = [
        (role, c["service"], c["operation"], [a["resource"] for a in c["authorizations"]][:2])
        for role, calls in recorded.items()
        for c in calls
        if c["allowed"] is False
    ]
    assert denied == []
    assert {"PlannerRole", "WorkerRole", "DbtTaskRole"} <= set(recorded)


def test_every_grant_is_used_or_justified(
    athena_stack: AthenaStack, recorded: dict[str, list[dict]]
) -> None:
    unused: list[tuple[str, str, str]] = []
    granted: set[tuple[str, str, str]] = set()
    for role in ("PlannerRole", "WorkerRole", "DbtTaskRole"):
        policy = Policy.of(athena_stack.deployment.stack.role_statements(role))
        requests = [
            Request(a["action"], a["resource"], a["context"])
            for call in recorded.get(role, [])
            for a in call["authorizations"]
        ]
        for sid, action in policy.grants():
            granted.add((role, sid, action))
            if not any(policy.grant_matches(sid, action, r) for r in requests):
                unused.append((role, sid, action))
    print("\ngrants no recorded call used (justified):")
    for grant in sorted(unused):
        print(f"  {'.'.join(grant)}: {JUSTIFIED_UNUSED.get(grant, 'NOT JUSTIFIED')}")
    unexplained = sorted(set(unused) - set(JUSTIFIED_UNUSED))
    assert unexplained == [], "unused grants: remove them or justify them in JUSTIFIED_UNUSED"
    # whether a crash-recovery path or an emptied day occurs depends on the sample's data
    exercised_sometimes = {k for k, reason in JUSTIFIED_UNUSED.items() if reason in DATA_DEPENDENT}
    stale = sorted((set(JUSTIFIED_UNUSED) & granted) - set(unused) - exercised_sometimes)
    assert stale == [], "these grants are used now: drop them from JUSTIFIED_UNUSED"
