"""Least privilege, read from the template itself: what each role may do, and on what."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.cfn import (
    TEMPLATE_PATH,
    Statement,
    load_template,
    policy_statements,
    resources_of_type,
)

# The only statements allowed a bare "*" resource, each because AWS accepts nothing else.
WILDCARD_RESOURCE_ALLOWED = {
    ("DataKey", "AccountManagesAndDelegatesKey"): "a key policy's resource is always '*'",
    ("DataKey", "LogsEncryptLogGroups"): "a key policy's resource is always '*'",
    ("DataKey", "AlarmsPublishToEncryptedTopic"): "a key policy's resource is always '*'",
    ("TaskExecutionRole", "GetRegistryToken"): "ecr:GetAuthorizationToken has no resource ARN",
    ("DbtTaskRole", "LakeFormationDataAccess"): "lakeformation:GetDataAccess has no resource ARN",
}

S3_WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}

SOURCE_BUCKET_ARN = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${SourceBucketName}"}
SOURCE_OBJECTS_ARN = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${SourceBucketName}/${SourcePrefix}*"}


def lake(suffix: str) -> dict[str, str]:
    return {"Fn::Sub": "${LakeBucket.Arn}/" + suffix}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def statements(template: dict[str, Any]) -> list[Statement]:
    return list(policy_statements(template))


def allows(statements: list[Statement]) -> list[Statement]:
    return [s for s in statements if s.body["Effect"] == "Allow"]


def role_allows(statements: list[Statement], role: str) -> list[Statement]:
    return [s for s in allows(statements) if s.resource_id == role]


def test_every_role_and_policy_is_found(statements: list[Statement]) -> None:
    # Guards the other tests: a parser that found nothing would pass them all.
    holders = {s.resource_id for s in statements}
    assert holders >= {
        "DataKey",
        "LakeBucketPolicy",
        "AthenaResultsBucketPolicy",
        "AlertTopicPolicy",
        "PlannerRole",
        "WorkerRole",
        "TaskExecutionRole",
        "DbtTaskRole",
        "DimensionsTaskRole",
        "ScheduleRunTaskRole",
    }


def test_no_wildcard_actions_are_granted(statements: list[Statement]) -> None:
    wildcards = [
        (s.resource_id, s.sid, action)
        for s in allows(statements)
        for action in s.actions
        if action == "*" or action.endswith(":*")
    ]
    assert wildcards == []


def test_allow_statements_name_what_they_grant(statements: list[Statement]) -> None:
    inverted = [
        (s.resource_id, s.sid)
        for s in allows(statements)
        if {"NotAction", "NotResource"} & set(s.body)
    ]
    assert inverted == []


def test_bare_wildcard_resources_only_where_aws_requires_them(statements: list[Statement]) -> None:
    found = {(s.resource_id, s.sid) for s in allows(statements) if "*" in s.resources}
    assert found == set(WILDCARD_RESOURCE_ALLOWED)


def test_each_wildcard_resource_is_commented_in_the_template() -> None:
    lines = [line for line in TEMPLATE_PATH.read_text().splitlines() if 'Resource: "*"' in line]
    assert len(lines) == len(WILDCARD_RESOURCE_ALLOWED)
    for line in lines:
        assert re.search(r'Resource: "\*"\s+# AWS requires "\*"', line), line


def test_wildcard_principals_only_deny(statements: list[Statement]) -> None:
    open_grants = [
        (s.resource_id, s.sid) for s in allows(statements) if s.body.get("Principal") == "*"
    ]
    assert open_grants == []


def test_bucket_policies_deny_plain_http(template: dict[str, Any]) -> None:
    policies = resources_of_type(template, "AWS::S3::BucketPolicy")
    assert {p["Properties"]["Bucket"]["Ref"] for p in policies.values()} == {
        "LakeBucket",
        "AthenaResultsBucket",
    }
    for policy in policies.values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Principal"] == "*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_roles_are_assumable_only_by_their_service(statements: list[Statement]) -> None:
    expected = {
        "PlannerRole": "lambda.amazonaws.com",
        "WorkerRole": "lambda.amazonaws.com",
        "TaskExecutionRole": "ecs-tasks.amazonaws.com",
        "DbtTaskRole": "ecs-tasks.amazonaws.com",
        "DimensionsTaskRole": "ecs-tasks.amazonaws.com",
        "ScheduleRunTaskRole": "events.amazonaws.com",
    }
    trusts = list(policy_statements(load_template(), trust=True))
    assert {s.resource_id for s in trusts} == set(expected)
    for trust in trusts:
        assert trust.body["Effect"] == "Allow"
        assert trust.body["Action"] == "sts:AssumeRole"
        assert trust.body["Principal"] == {"Service": expected[trust.resource_id]}


@pytest.mark.parametrize(
    ("role", "writable"),
    [
        ("PlannerRole", []),
        ("WorkerRole", [lake("v4_events/*"), lake("_ingest/*")]),
        ("DimensionsTaskRole", [lake("dimensions/*")]),
        ("DbtTaskRole", [lake("dbt/*"), {"Fn::Sub": "${AthenaResultsBucket.Arn}/dbt/*"}]),
        ("TaskExecutionRole", []),
        ("ScheduleRunTaskRole", []),
    ],
)
def test_s3_writes_stay_in_the_role_s_own_prefixes(
    statements: list[Statement], role: str, writable: list[dict[str, str]]
) -> None:
    written = [
        resource
        for s in role_allows(statements, role)
        if S3_WRITE_ACTIONS & set(s.actions)
        for resource in s.resources
    ]
    assert sorted(map(str, written)) == sorted(map(str, writable))


@pytest.mark.parametrize("role", ["PlannerRole", "WorkerRole"])
def test_freewheel_bucket_is_read_only_and_pinned_to_its_owner(
    statements: list[Statement], role: str
) -> None:
    on_source = [
        s
        for s in role_allows(statements, role)
        if SOURCE_BUCKET_ARN in s.resources or SOURCE_OBJECTS_ARN in s.resources
    ]
    assert on_source, f"{role} has no access to FreeWheel's bucket"
    for statement in on_source:
        assert set(statement.actions) <= {"s3:GetObject", "s3:ListBucket"}
        assert statement.body["Condition"]["StringEquals"] == {
            "s3:ResourceAccount": {"Ref": "SourceBucketAccountId"}
        }


def test_role_assumption_only_into_freewheel_s_role(statements: list[Statement]) -> None:
    assuming = [s for s in allows(statements) if "sts:AssumeRole" in s.actions]
    assert {s.resource_id for s in assuming} == {"PlannerRole", "WorkerRole"}
    for statement in assuming:
        assert statement.resources == [{"Ref": "SourceRoleArn"}]


def test_dbt_runs_queries_only_in_the_stack_s_workgroup(statements: list[Statement]) -> None:
    athena = [
        s
        for s in role_allows(statements, "DbtTaskRole")
        if any(a.startswith("athena:") for a in s.actions)
    ]
    queries = [s for s in athena if "athena:StartQueryExecution" in s.actions]
    assert len(queries) == 1
    assert queries[0].resources == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}"
            ":workgroup/${DbtWorkGroup}"
        }
    ]


def test_dbt_cannot_alter_the_lake_tables(statements: list[Statement]) -> None:
    denies = [
        s for s in statements if s.resource_id == "DbtTaskRole" and s.body["Effect"] == "Deny"
    ]
    denied_tables = {
        r["Fn::Sub"].rsplit("/", 1)[1]
        for s in denies
        for r in s.resources
        if "glue" in r["Fn::Sub"]
    }
    assert denied_tables == {"v4_events", "sites", "site_sections", "series"}
    assert {"glue:DeleteTable", "glue:UpdateTable"} <= {a for s in denies for a in s.actions}


def test_glue_access_stays_in_the_stack_s_database(statements: list[Statement]) -> None:
    prefix = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
    allowed = {
        prefix + "catalog",
        prefix + "database/${GlueDatabase}",
        prefix + "table/${GlueDatabase}/*",
    }
    glue = [s for s in allows(statements) if any(a.startswith("glue:") for a in s.actions)]
    assert {s.resource_id for s in glue} == {"DbtTaskRole"}
    assert {r["Fn::Sub"] for s in glue for r in s.resources} == allowed


def test_only_the_dimensions_task_reads_the_api_secret(statements: list[Statement]) -> None:
    readers = [s for s in allows(statements) if "secretsmanager:GetSecretValue" in s.actions]
    assert [(s.resource_id, s.resources) for s in readers] == [
        ("DimensionsTaskRole", [{"Ref": "FreeWheelApiSecret"}])
    ]
