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

# Grants no offline run can use, and why they stay. A grant used in the runs must not be here
# (the test fails so the list stays true), and an unused grant not here fails the test.
JUSTIFIED_UNUSED = {
    (
        "PlannerRole",
        "WriteOwnLogs",
    ): "CloudWatch Logs: the Lambda runtime writes them, not our code",
    ("WorkerRole", "WriteOwnLogs"): "CloudWatch Logs: the Lambda runtime writes them, not our code",
    ("PlannerRole", "AssumeSourceRole"): "only with SourceRoleArn (FreeWheel's role); unset here",
    ("WorkerRole", "AssumeSourceRole"): "only with SourceRoleArn (FreeWheel's role); unset here",
    ("WorkerRole", "ReadAliases"): "only with AliasesKey set; unset here",
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
    unused: dict[tuple[str, str], list[str]] = defaultdict(list)
    for role in ("PlannerRole", "WorkerRole", "DbtTaskRole"):
        policy = Policy.of(athena_stack.deployment.stack.role_statements(role))
        requests = [
            Request(a["action"], a["resource"], a["context"])
            for call in recorded.get(role, [])
            for a in call["authorizations"]
        ]
        for sid, action, resource in policy.grants():
            if not any(policy.grant_matches(sid, action, resource, r) for r in requests):
                unused[(role, sid)].append(f"{action} on {resource}")
    report = "\n".join(
        f"{role}.{sid}: {', '.join(grants)}" for (role, sid), grants in sorted(unused.items())
    )
    print("\ngrants no recorded call used:\n" + report)
    unexplained = {k: v for k, v in unused.items() if k not in JUSTIFIED_UNUSED}
    assert unexplained == {}, "unused grants: remove them or justify them in JUSTIFIED_UNUSED"
