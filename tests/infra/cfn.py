"""Reading the CloudFormation template the way CloudFormation does, for tests that inspect it.

cfn-lint's loader understands the short-form tags (!Ref, !Sub, !GetAtt, !If…) and returns their
long form ({"Ref": …}, {"Fn::Sub": …}), so tests compare against that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "infra" / "bones2peaches.yaml"

NO_VALUE = {"Ref": "AWS::NoValue"}

# Where a policy document lives in each resource type that carries one.
POLICY_DOCUMENT_PATHS: dict[str, tuple[str, ...]] = {
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
}


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return cfn_yaml.load(str(path))


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    resource_id: str  # logical id of the resource holding the policy
    policy: str  # policy name, or the property holding the document
    body: dict[str, Any]

    @property
    def sid(self) -> str:
        return str(self.body.get("Sid", ""))

    @property
    def actions(self) -> list[str]:
        return as_list(self.body.get("Action", []))

    @property
    def resources(self) -> list[Any]:
        return as_list(self.body.get("Resource", []))


def _branches(statement: Any) -> Iterator[dict[str, Any]]:
    """Both outcomes of an `Fn::If` statement (a condition can be true in some deployment)."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        _, when_true, when_false = statement["Fn::If"]
        for branch in (when_true, when_false):
            yield from _branches(branch)
    elif statement != NO_VALUE:
        yield statement


def _statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for statement in as_list(document["Statement"]):
        yield from _branches(statement)


def policy_statements(template: dict[str, Any], *, trust: bool = False) -> Iterator[Statement]:
    """Every permission statement of the template; with `trust`, role trust policies instead."""
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            if trust:
                for body in _statements(props["AssumeRolePolicyDocument"]):
                    yield Statement(logical_id, "AssumeRolePolicyDocument", body)
                continue
            for policy in props.get("Policies", []):
                for body in _statements(policy["PolicyDocument"]):
                    yield Statement(logical_id, policy["PolicyName"], body)
        elif kind in POLICY_DOCUMENT_PATHS and not trust:
            (prop,) = POLICY_DOCUMENT_PATHS[kind]
            for body in _statements(props[prop]):
                yield Statement(logical_id, prop, body)
