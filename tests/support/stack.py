"""infra/bones2peaches.yaml, resolved and deployed into the AWS stand-in for end-to-end tests.

moto's CloudFormation creates buckets and queues but only marks Glue tables and Athena
workgroups as complete, so the resources the pipeline's data path needs are created here from the
template's own definitions, with the names CloudFormation would give them:
- the lake, Athena-results and FreeWheel-source buckets (with the template's lifecycle rules);
- the Glue database and its four lake tables (`AWS::Glue::Table`, as defined);
- every `AWS::Athena::WorkGroup` with its WorkGroupConfiguration (the stand-in's Athena reads it);
- the ingest queue and its dead-letter queue;
- one principal per role the tests exercise (planner, worker, dbt task), with the role's inline
  policies resolved, registered with the stand-in so every call is authorized as AWS would.

`resolve()` evaluates the intrinsics the template uses (Ref, Fn::Sub, Fn::GetAtt, Fn::If,
Fn::Join, conditions) for given parameters; a resource's Ref/GetAtt values are the physical names
and ARNs CloudFormation would produce (KMS keys, secrets and topics get fixed fake ARNs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from tests.infra.cfn import load_template
from tests.support.aws_requests import ACCOUNT, REGION
from tests.support.aws_standin import StandIn

NO_VALUE = object()
ADMIN_KEY = "b2p-admin"  # the test harness itself: recorded, never refused
ROLE_KEYS = {
    "PlannerRole": "b2p-planner",
    "WorkerRole": "b2p-worker",
    "DbtTaskRole": "b2p-dbt-task",
}
FAKE_KEY_ID = "11111111-2222-3333-4444-555555555555"


def admin_client(endpoint: str, service: str, access_key: str = ADMIN_KEY) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )


@dataclass
class ResolvedTemplate:
    """The template with parameter values; resolves any fragment of it."""

    template: dict[str, Any]
    parameters: dict[str, str]
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical id -> URL (after create)

    @classmethod
    def load(cls, overrides: dict[str, str]) -> ResolvedTemplate:
        template = load_template()
        parameters = {
            name: str(spec["Default"])
            for name, spec in template["Parameters"].items()
            if "Default" in spec
        }
        parameters.update(overrides)
        return cls(template, parameters)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    # ---- intrinsics

    def condition(self, name: str) -> bool:
        return bool(self._evaluate_condition(self.template["Conditions"][name]))

    def _evaluate_condition(self, value: Any) -> Any:
        if isinstance(value, dict):
            ((function, argument),) = value.items()
            if function == "Fn::Equals":
                left, right = (self.resolve(v) for v in argument)
                return str(left) == str(right)
            if function == "Fn::Not":
                return not self._evaluate_condition(argument[0])
            if function == "Fn::And":
                return all(self._evaluate_condition(a) for a in argument)
            if function == "Fn::Or":
                return any(self._evaluate_condition(a) for a in argument)
            if function == "Condition":
                return self.condition(argument)
            return self.resolve(value)
        return value

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "bones2peaches",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            kind = self.template["Parameters"][name]["Type"]
            return value.split(",") if kind.startswith("List<") else value
        return self._physical_id(name)

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.resources[name]["Type"]
        physical = self._physical_id(name) if kind not in ("AWS::SQS::Queue",) else ""
        if attribute == "Arn":
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{physical}"
            if kind == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self._queue_name(name)}"
            if kind == "AWS::KMS::Key":
                return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{FAKE_KEY_ID}"
            if kind == "AWS::Logs::LogGroup":
                return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*"
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{ACCOUNT}:role/{name}"
            if kind == "AWS::ECS::Cluster":
                return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{physical}"
            raise KeyError(f"GetAtt {name}.Arn of a {kind}")
        if attribute == "QueueName":
            return self._queue_name(name)
        raise KeyError(f"GetAtt {name}.{attribute}")

    def _queue_name(self, name: str) -> str:
        return self.resolve(self.resources[name]["Properties"]["QueueName"])

    def _physical_id(self, name: str) -> str:
        resource = self.resources[name]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            return self.resolve(props["BucketName"])
        if kind == "AWS::Glue::Database":
            return self.resolve(props["DatabaseInput"]["Name"])
        if kind == "AWS::Athena::WorkGroup":
            return self.resolve(props["Name"])
        if kind == "AWS::SQS::Queue":
            return (
                self.queue_urls.get(name)
                or f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self._queue_name(name)}"
            )
        if kind == "AWS::KMS::Key":
            return FAKE_KEY_ID
        if kind == "AWS::Logs::LogGroup":
            return self.resolve(props["LogGroupName"])
        if kind == "AWS::SecretsManager::Secret":
            secret = self.resolve(props["Name"])
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-AbCdEf"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.resolve(props['TopicName'])}"
        if kind == "AWS::Lambda::Function":
            return self.resolve(props["FunctionName"])
        if kind == "AWS::ECS::Cluster":
            return self.resolve(props["ClusterName"])
        if kind == "AWS::ECS::TaskDefinition":
            return (
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{self.resolve(props['Family'])}:1"
            )
        if kind == "AWS::IAM::Role":
            return name
        return f"{name}-physical-id"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref":
                    return self.ref(argument)
                if key == "Fn::GetAtt":
                    name, attribute = (
                        argument if isinstance(argument, list) else argument.split(".", 1)
                    )
                    return self.get_att(name, attribute)
                if key == "Fn::Sub":
                    return self._sub(argument)
                if key == "Fn::If":
                    condition, when_true, when_false = argument
                    return self.resolve(when_true if self.condition(condition) else when_false)
                if key == "Fn::Join":
                    separator, items = argument
                    return separator.join(str(self.resolve(i)) for i in items)
                if key == "Fn::Select":
                    index, items = argument
                    return self.resolve(items)[int(index)]
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self.resolve(i) for i in value) if v is not NO_VALUE]
        return value

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            if match[1]:
                return "${" + match[2] + "}"
            name = match[2]
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{(!?)([\w:.]+)\}", replace, text)

    # ---- what the tests need from it

    def physical(self, name: str) -> str:
        return str(self.ref(name))

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        props = self.resources[role]["Properties"]
        statements = []
        for policy in props.get("Policies", []):
            document = self.resolve(policy["PolicyDocument"])
            statements.extend(document["Statement"])
        return statements

    def function_environment(self, function: str) -> dict[str, str]:
        props = self.resources[function]["Properties"]
        return {k: str(v) for k, v in self.resolve(props["Environment"]["Variables"]).items()}

    def container(self, task_definition: str) -> dict[str, Any]:
        (container,) = self.resolve(
            self.resources[task_definition]["Properties"]["ContainerDefinitions"]
        )
        return container

    def container_environment(self, task_definition: str) -> dict[str, str]:
        return {
            e["Name"]: str(e["Value"])
            for e in self.container(task_definition).get("Environment", [])
        }

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}


@dataclass
class Deployment:
    """The stack's data-path resources, created in the stand-in."""

    standin: StandIn
    stack: ResolvedTemplate

    @property
    def endpoint(self) -> str:
        return self.standin.endpoint

    @property
    def lake_bucket(self) -> str:
        return self.stack.physical("LakeBucket")

    @property
    def results_bucket(self) -> str:
        return self.stack.physical("AthenaResultsBucket")

    @property
    def source_bucket(self) -> str:
        return self.stack.parameters["SourceBucketName"]

    @property
    def database(self) -> str:
        return self.stack.physical("GlueDatabase")

    def client(self, service: str, role: str | None = None) -> Any:
        return admin_client(self.endpoint, service, ROLE_KEYS[role] if role else ADMIN_KEY)

    @classmethod
    def create(cls, standin: StandIn, parameters: dict[str, str], *, enforce: bool = True):
        stack = ResolvedTemplate.load(parameters)
        deployment = cls(standin, stack)
        deployment._create_buckets()
        deployment._create_queues()
        deployment._create_catalog()
        deployment._create_workgroups()
        deployment._register_principals(enforce)
        return deployment

    def _create_buckets(self) -> None:
        s3 = self.client("s3")
        encrypted: dict[str, str] = {}
        for name, resource in self.stack.of_type("AWS::S3::Bucket").items():
            bucket = self.stack.physical(name)
            s3.create_bucket(Bucket=bucket)
            props = self.stack.resolve(resource["Properties"])
            rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
            if rules:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=bucket, LifecycleConfiguration={"Rules": [_s3_rule(r) for r in rules]}
                )
            for rule in props.get("BucketEncryption", {}).get(
                "ServerSideEncryptionConfiguration", []
            ):
                default = rule["ServerSideEncryptionByDefault"]
                if default["SSEAlgorithm"] == "aws:kms":
                    encrypted[bucket] = default["KMSMasterKeyID"]
        s3.create_bucket(Bucket=self.source_bucket)
        queues = {
            self.stack.resolve(r["Properties"]["QueueName"]): self.stack.resolve(
                r["Properties"]["KmsMasterKeyId"]
            )
            for r in self.stack.of_type("AWS::SQS::Queue").values()
            if "KmsMasterKeyId" in r["Properties"]
        }
        key_arn = self.stack.get_att("DataKey", "Arn")
        self.standin.set_encryption(
            encrypted,
            {name: key_arn if key == FAKE_KEY_ID else key for name, key in queues.items()},
        )

    def _create_queues(self) -> None:
        sqs = self.client("sqs")
        for name in ("IngestDeadLetterQueue", "IngestQueue"):
            props = self.stack.resources[name]["Properties"]
            attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
            if "RedrivePolicy" in props:
                redrive = self.stack.resolve(props["RedrivePolicy"])
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                        "maxReceiveCount": str(redrive["maxReceiveCount"]),
                    }
                )
            url = sqs.create_queue(QueueName=self.stack._queue_name(name), Attributes=attributes)[
                "QueueUrl"
            ]
            self.stack.queue_urls[name] = url

    def _create_catalog(self) -> None:
        glue = self.client("glue")
        glue.create_database(
            DatabaseInput=self.stack.resolve(
                self.stack.resources["GlueDatabase"]["Properties"]["DatabaseInput"]
            )
        )
        for resource in self.stack.of_type("AWS::Glue::Table").values():
            props = self.stack.resolve(resource["Properties"])
            glue.create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])

    def _create_workgroups(self) -> None:
        athena = self.client("athena")
        for resource in self.stack.of_type("AWS::Athena::WorkGroup").values():
            props = self.stack.resolve(resource["Properties"])
            configuration = dict(props.get("WorkGroupConfiguration", {}))
            configuration.pop("EngineVersion", None)
            if "BytesScannedCutoffPerQuery" in configuration:  # a Number parameter, as text
                configuration["BytesScannedCutoffPerQuery"] = int(
                    configuration["BytesScannedCutoffPerQuery"]
                )
            athena.create_work_group(
                Name=props["Name"],
                Configuration=configuration,
                Description=props.get("Description", ""),
            )

    def _register_principals(self, enforce: bool) -> None:
        self.standin.register(ADMIN_KEY, "admin", None, False)
        for role, key in ROLE_KEYS.items():
            self.standin.register(key, role, self.stack.role_statements(role), enforce)

    # ---- the components' environments

    def lambda_env(self, function: str, role: str) -> dict[str, str]:
        return {**self.stack.function_environment(function), **self.aws_env(role)}

    def aws_env(self, role: str | None) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ROLE_KEYS[role] if role else ADMIN_KEY,
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }


def _s3_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    result: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule.get("Status", "Enabled")}
    result["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        result["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        result["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        result["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(
                rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
            )
        }
    return result
