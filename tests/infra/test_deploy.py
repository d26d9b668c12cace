"""Deploy the stack into moto's CloudFormation, then run the ingest handlers the way Lambda would:
the planner on its schedule, the worker once per queued message, with the environment the stack
gave each function. The Parquet files must then be in the deployed lake bucket."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import io
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from tests.infra.cfn import TEMPLATE_PATH
from tests.support.aws_requests import ACCOUNT
from tests.support.lambda_runner import LambdaContext, scheduled_event, sqs_event

HANDLERS_MODULE = "ingest.aws_lambda"
STACK = "b2p-test"
SOURCE_BUCKET = "freewheel-delivery"
SOURCE_PREFIX = "v4/"

HEADER = (
    "transaction_id,event_name,event_time,slot_id,time_position_class,site_id,"
    "max_slot_duration,ad_duration,sales_type"
)

# Two hourly files under the prefix (the second crosses midnight) and one outside it.
SOURCE_FILES = {
    f"{SOURCE_PREFIX}2024/05/01/network_7.csv.gz": [
        "t1,slotImpression,2024-05-01 07:15:00,s1,PREROLL,10,30,,",
        "t1,defaultImpression,2024-05-01 07:15:01,s1,PREROLL,10,,15,DIRECT",
        "t2,slotImpression,2024-05-01 08:00:00,s1,MIDROLL,10,60,,",
    ],
    f"{SOURCE_PREFIX}2024/05/01/network_23.csv.gz": [
        "t3,slotImpression,2024-05-01 23:59:59,s1,POSTROLL,11,20,,",
        "t3,defaultImpression,2024-05-02 00:00:04,s1,POSTROLL,11,,20,HOUSE",
    ],
    "elsewhere/not_ours.csv.gz": [
        "t9,slotImpression,2024-05-01 07:00:00,s1,PREROLL,10,30,,",
    ],
}

EXPECTED_ROWS_PER_PARTITION = {
    "event_date=2024-05-01/event_hour=7": 2,
    "event_date=2024-05-01/event_hour=8": 1,
    "event_date=2024-05-01/event_hour=23": 1,
    "event_date=2024-05-02/event_hour=0": 1,
}


@dataclass(frozen=True)
class Deployment:
    outputs: dict[str, str]
    queue_arn: str


@pytest.fixture
def handlers() -> ModuleType:
    if importlib.util.find_spec(HANDLERS_MODULE) is None:
        pytest.skip(
            f"{HANDLERS_MODULE} is not written yet (S3-ingest issue); nothing to deploy-run"
        )
    return importlib.import_module(HANDLERS_MODULE)


def upload_source_files() -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    for key, rows in SOURCE_FILES.items():
        body = gzip.compress(("\n".join([HEADER, *rows]) + "\n").encode(), mtime=0)
        s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=body)


def default_network() -> tuple[str, list[str]]:
    ec2 = boto3.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    return vpc["VpcId"], [s["SubnetId"] for s in subnets["Subnets"]][:2]


@pytest.fixture
def deployment(aws: str) -> Deployment:
    upload_source_files()
    vpc_id, subnet_ids = default_network()
    parameters = {
        "SourceBucketName": SOURCE_BUCKET,
        "SourcePrefix": SOURCE_PREFIX,
        "SourceBucketAccountId": ACCOUNT,
        "ImageTag": "test",
        "VpcId": vpc_id,
        "SubnetIds": ",".join(subnet_ids),
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=TEMPLATE_PATH.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    (stack,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    queue_arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=outputs["IngestQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    return Deployment(outputs, queue_arn)


def function_environment(name: str) -> dict[str, str]:
    config = boto3.client("lambda").get_function_configuration(FunctionName=name)
    return dict(config["Environment"]["Variables"])


def use_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key in (
        "B2P_SOURCE",
        "B2P_LAKE",
        "B2P_QUEUE_URL",
        "B2P_SOURCE_ROLE_ARN",
        "B2P_SOURCE_EXTERNAL_ID",
        "B2P_COLUMN_ALIASES",
        "B2P_RETRY_QUARANTINED",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def take_over_queue_polling(deployment: Deployment) -> None:
    """Moto would run the worker in Docker inside SendMessage; here the test is Lambda's poller."""
    client = boto3.client("lambda")
    (mapping,) = client.list_event_source_mappings(
        FunctionName=deployment.outputs["WorkerFunctionName"]
    )["EventSourceMappings"]
    assert mapping["EventSourceArn"] == deployment.queue_arn
    assert mapping["BatchSize"] == 1
    client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)


def receive_all(queue_url: str) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs")
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return
        yield from batch


def run_planner(
    handlers: ModuleType, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = deployment.outputs["PlannerFunctionName"]
    use_environment(monkeypatch, function_environment(name))
    handlers.planner_handler(scheduled_event(), LambdaContext(name))


def run_workers(
    handlers: ModuleType, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> int:
    name = deployment.outputs["WorkerFunctionName"]
    use_environment(monkeypatch, function_environment(name))
    queue_url = deployment.outputs["IngestQueueUrl"]
    handled = 0
    for message in receive_all(queue_url):
        response = handlers.worker_handler(
            sqs_event(message, deployment.queue_arn), LambdaContext(name)
        )
        assert not (response or {}).get("batchItemFailures"), response
        # Lambda deletes a message once the handler returns without reporting it failed
        boto3.client("sqs").delete_message(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
        handled += 1
    return handled


def lake_event_files(bucket: str) -> dict[str, Any]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="v4_events/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {
        key: pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        for key in keys
        if key.endswith(".parquet")
    }


def partition_of(key: str) -> str:
    return "/".join(key.split("/")[1:3])


def test_deployed_stack_ingests_freewheel_files_into_its_lake(
    handlers: ModuleType, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    take_over_queue_polling(deployment)

    run_planner(handlers, deployment, monkeypatch)
    # one message per log file under the prefix; the file outside SourcePrefix is not planned
    assert run_workers(handlers, deployment, monkeypatch) == 2

    files = lake_event_files(deployment.outputs["LakeBucketName"])
    rows_per_partition: dict[str, int] = {}
    sources: set[str] = set()
    for key, table in files.items():
        rows_per_partition[partition_of(key)] = (
            rows_per_partition.get(partition_of(key), 0) + table.num_rows
        )
        sources |= set(table.column("source_file").to_pylist())
    assert rows_per_partition == EXPECTED_ROWS_PER_PARTITION
    assert sources == {
        f"s3://{SOURCE_BUCKET}/{SOURCE_PREFIX}2024/05/01/network_7.csv.gz",
        f"s3://{SOURCE_BUCKET}/{SOURCE_PREFIX}2024/05/01/network_23.csv.gz",
    }

    # the next scheduled run finds both files in the lake's ingest log and queues nothing
    run_planner(handlers, deployment, monkeypatch)
    assert run_workers(handlers, deployment, monkeypatch) == 0
    dead_letters = list(receive_all(deployment.outputs["IngestDeadLetterQueueUrl"]))
    assert dead_letters == []


def test_deployed_functions_get_the_stack_s_configuration(deployment: Deployment) -> None:
    # runs without the handlers: the wiring a handler relies on is the stack's job
    lake = f"s3://{deployment.outputs['LakeBucketName']}"
    expected = {
        "B2P_SOURCE": f"s3://{SOURCE_BUCKET}/{SOURCE_PREFIX}",
        "B2P_LAKE": lake,
        "B2P_QUEUE_URL": deployment.outputs["IngestQueueUrl"],
    }
    assert function_environment(deployment.outputs["PlannerFunctionName"]) == {
        **expected,
        "B2P_RETRY_QUARANTINED": "false",  # the default of the RetryQuarantined parameter
    }
    assert function_environment(deployment.outputs["WorkerFunctionName"]) == expected
    assert deployment.outputs["LakeUri"] == lake
    s3 = boto3.client("s3")
    # (moto's CloudFormation ignores VersioningConfiguration; test_template checks it instead)
    encryption = s3.get_bucket_encryption(Bucket=deployment.outputs["LakeBucketName"])
    (rule,) = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert (
        rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
        == deployment.outputs["DataKeyArn"]
    )
