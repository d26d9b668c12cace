"""The Lambda planner and worker against S3 and SQS on moto_server: every new object queued once,
a message delivered twice ingested once, a changed or vanished object handled, bad messages
reported as batch item failures."""

from __future__ import annotations

import gzip
import json
import os
import random
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ingest import aws_lambda
from ingest.aws_lambda import HandlerConfigError, planner_handler, worker_handler
from ingest.storage import open_storage
from ingest.storage.s3 import S3Storage
from tests.support.faulty_proxy import FaultyProxy
from tests.support.synthetic_lake import (
    assert_lake_holds_exactly,
    synthetic_file,
    synthetic_files,
    upload,
)

SOURCE_BUCKET = "freewheel-delivery"
LAKE_BUCKET = "lake"
SOURCE = f"s3://{SOURCE_BUCKET}/v4/"


@pytest.fixture(autouse=True)
def _fresh_cold_start() -> None:
    aws_lambda.column_aliases.cache_clear()  # each test is a new Lambda environment


@pytest.fixture
def deployed(aws: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, str]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    s3.create_bucket(Bucket=LAKE_BUCKET)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    monkeypatch.setenv("B2P_SOURCE", SOURCE)
    monkeypatch.setenv("B2P_LAKE", f"s3://{LAKE_BUCKET}")
    monkeypatch.setenv("B2P_QUEUE_URL", queue_url)
    return s3, sqs, queue_url


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", []):
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages += batch
    return messages


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": str(uuid.uuid4()), "body": body, "eventSource": "aws:sqs"}
            for body in bodies
        ]
    }


def test_planner_queues_each_new_object_once_and_nothing_already_logged(deployed) -> None:
    s3, sqs, queue_url = deployed
    files = synthetic_files(3, seed=21)
    upload(s3, SOURCE_BUCKET, "v4/", files)
    s3.put_object(Bucket=SOURCE_BUCKET, Key="v4/_manifest.json", Body=b"{}")  # not a log file

    assert planner_handler({}, None) == {"queued": 3, "skipped": 0}
    bodies = [json.loads(m["Body"]) for m in receive_all(sqs, queue_url)]
    etags = {
        item["Key"][len("v4/") :]: item["ETag"].strip('"')
        for item in s3.list_objects_v2(Bucket=SOURCE_BUCKET, Prefix="v4/")["Contents"]
    }
    assert sorted(bodies, key=lambda b: b["key"]) == [
        {"source": SOURCE, "key": f.name, "etag": etags[f.name], "size": len(f.data)} for f in files
    ]

    assert worker_handler(sqs_event(*(json.dumps(b) for b in bodies)), None) == {
        "batchItemFailures": []
    }
    assert planner_handler({}, None) == {"queued": 0, "skipped": 3}
    assert receive_all(sqs, queue_url) == []


def test_a_message_delivered_twice_ingests_its_object_once(deployed) -> None:
    s3, sqs, queue_url = deployed
    files = synthetic_files(2, seed=22)
    upload(s3, SOURCE_BUCKET, "v4/", files)
    planner_handler({}, None)
    messages = receive_all(sqs, queue_url)
    assert len(messages) == 2

    for message in messages + messages:  # SQS is at-least-once
        assert worker_handler(sqs_event(message["Body"]), None) == {"batchItemFailures": []}

    assert_lake_holds_exactly(open_storage(f"s3://{LAKE_BUCKET}"), files)


def test_an_object_changed_after_planning_is_ingested_in_its_current_version(deployed) -> None:
    s3, sqs, queue_url = deployed
    rng = random.Random(23)
    planned = synthetic_file("2024/06/01/network_00.csv.gz", rng, [3], 20)
    current = synthetic_file(planned.name, rng, [4, 5], 30)
    upload(s3, SOURCE_BUCKET, "v4/", [planned])
    planner_handler({}, None)
    [message] = receive_all(sqs, queue_url)
    upload(s3, SOURCE_BUCKET, "v4/", [current])

    assert worker_handler(sqs_event(message["Body"]), None) == {"batchItemFailures": []}

    summary = assert_lake_holds_exactly(open_storage(f"s3://{LAKE_BUCKET}"), [current])
    assert summary.rows_per_partition == current.rows_per_partition
    assert planner_handler({}, None) == {"queued": 0, "skipped": 1}


def test_bad_messages_fail_alone_and_a_vanished_object_is_not_an_error(deployed) -> None:
    s3, _, _ = deployed
    [item] = synthetic_files(1, seed=24)
    upload(s3, SOURCE_BUCKET, "v4/", [item])
    good = {"source": SOURCE, "key": item.name, "etag": "planned", "size": 1}
    foreign = {**good, "source": "s3://someone-else/secrets/"}
    vanished = {**good, "key": "2024/06/01/deleted.csv.gz"}
    event = sqs_event(json.dumps(foreign), "not json", json.dumps(vanished), json.dumps(good))

    response = worker_handler(event, None)

    ids = [record["messageId"] for record in event["Records"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in ids[:2]]}
    assert_lake_holds_exactly(open_storage(f"s3://{LAKE_BUCKET}"), [item])


def test_a_missing_setting_names_the_variable(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("B2P_QUEUE_URL", raising=False)
    monkeypatch.setenv("B2P_SOURCE", SOURCE)
    monkeypatch.setenv("B2P_LAKE", "s3://lake")
    with pytest.raises(HandlerConfigError, match="B2P_QUEUE_URL"):
        planner_handler({}, None)


OTHER_HEADERS = gzip.compress(
    b"txn,event_name,ts,slot_id,time_position_class\nt,e,1717243200,s,P\n"
)
ALIASES = {"txn": "transaction_id", "ts": "event_time"}


def lake_keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=LAKE_BUCKET).get("Contents", [])]


def test_the_worker_maps_other_header_names_with_the_alias_file_in_s3(
    deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, sqs, queue_url = deployed
    s3.put_object(Bucket=SOURCE_BUCKET, Key="v4/2024/06/01/other.csv.gz", Body=OTHER_HEADERS)
    s3.put_object(Bucket=LAKE_BUCKET, Key="_config/aliases.json", Body=json.dumps(ALIASES))
    monkeypatch.setenv("B2P_COLUMN_ALIASES", f"s3://{LAKE_BUCKET}/_config/aliases.json")

    planner_handler({}, None)
    [message] = receive_all(sqs, queue_url)
    assert worker_handler(sqs_event(message["Body"]), None) == {"batchItemFailures": []}

    keys = lake_keys(s3)
    assert [k for k in keys if k.startswith("v4_events/event_date=2024-06-01/event_hour=12/")]
    assert not [k for k in keys if k.startswith("_ingest/quarantine/")]


def test_quarantined_versions_are_queued_again_when_retry_is_switched_on(
    deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, sqs, queue_url = deployed
    s3.put_object(Bucket=SOURCE_BUCKET, Key="v4/2024/06/01/other.csv.gz", Body=OTHER_HEADERS)
    planner_handler({}, None)
    [message] = receive_all(sqs, queue_url)
    worker_handler(sqs_event(message["Body"]), None)  # no aliases yet: quarantined
    assert [k for k in lake_keys(s3) if k.startswith("_ingest/quarantine/")]
    assert planner_handler({}, None) == {"queued": 0, "skipped": 1}

    # the operator uploads the alias file and switches retry on for one planner run
    s3.put_object(Bucket=LAKE_BUCKET, Key="_config/aliases.json", Body=json.dumps(ALIASES))
    monkeypatch.setenv("B2P_COLUMN_ALIASES", f"s3://{LAKE_BUCKET}/_config/aliases.json")
    monkeypatch.setenv("B2P_RETRY_QUARANTINED", "true")
    assert planner_handler({}, None) == {"queued": 1, "skipped": 0}
    [message] = receive_all(sqs, queue_url)
    assert worker_handler(sqs_event(message["Body"]), None) == {"batchItemFailures": []}

    keys = lake_keys(s3)
    assert [k for k in keys if k.startswith("v4_events/")]
    assert not [k for k in keys if k.startswith("_ingest/quarantine/")]
    monkeypatch.setenv("B2P_RETRY_QUARANTINED", "false")
    assert planner_handler({}, None) == {"queued": 0, "skipped": 1}


def test_a_bad_retry_setting_names_the_variable(deployed, monkeypatch) -> None:
    monkeypatch.setenv("B2P_RETRY_QUARANTINED", "yes")
    with pytest.raises(HandlerConfigError, match="B2P_RETRY_QUARANTINED"):
        planner_handler({}, None)


def test_a_head_refused_with_403_drops_the_message_with_a_warning(
    deployed, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # without s3:ListBucket on the source, S3 answers HEAD of a deleted object with 403
    s3, _, _ = deployed
    [item] = synthetic_files(1, seed=25)
    upload(s3, SOURCE_BUCKET, "v4/", [item])
    real_info = S3Storage.info

    def head(self: S3Storage, key: str) -> Any:
        if key.endswith("deleted.csv.gz"):
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")
        return real_info(self, key)

    monkeypatch.setattr(S3Storage, "info", head)
    good = {"source": SOURCE, "key": item.name, "etag": "planned", "size": 1}
    deleted = {**good, "key": "2024/06/01/deleted.csv.gz"}

    response = worker_handler(sqs_event(json.dumps(deleted), json.dumps(good)), None)

    assert response == {"batchItemFailures": []}
    assert "refused (403)" in caplog.text
    assert_lake_holds_exactly(open_storage(f"s3://{LAKE_BUCKET}"), [item])


def test_a_poison_object_ends_as_a_quarantine_record_and_a_successful_item(deployed) -> None:
    """Not redelivered until the dead-letter queue: recorded once, skipped from then on."""
    s3, sqs, queue_url = deployed
    [item] = synthetic_files(1, seed=26)
    upload(s3, SOURCE_BUCKET, "v4/", [item])
    s3.put_object(
        Bucket=SOURCE_BUCKET, Key="v4/2024/06/01/zeros.csv.gz", Body=gzip.compress(bytes(1 << 20))
    )
    planner_handler({}, None)
    messages = receive_all(sqs, queue_url)

    assert worker_handler(sqs_event(*(m["Body"] for m in messages)), None) == {
        "batchItemFailures": []
    }

    [quarantined] = [k for k in lake_keys(s3) if k.startswith("_ingest/quarantine/")]
    reason = json.loads(s3.get_object(Bucket=LAKE_BUCKET, Key=quarantined)["Body"].read())
    assert "NUL bytes" in reason["reason"]
    assert planner_handler({}, None) == {"queued": 0, "skipped": 2}


def test_a_get_refused_twice_ends_in_the_quarantine_not_the_dead_letter_queue(
    deployed, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, sqs, queue_url = deployed
    [item] = synthetic_files(1, seed=27)
    upload(s3, SOURCE_BUCKET, "v4/", [item])

    def refused(method: str, path: str) -> bool:
        return method == "GET" and path.startswith(f"/{SOURCE_BUCKET}/v4/{item.name}")

    outcomes = []
    with FaultyProxy(aws, forbidden=refused) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        for _ in range(2):  # each planner run queues it again until it is settled
            assert planner_handler({}, None) == {"queued": 1, "skipped": 0}
            [message] = receive_all(sqs, queue_url)
            outcomes.append(worker_handler(sqs_event(message["Body"]), None))
            aws_lambda.worker_storages.cache_clear()  # the next invocation: a new container
        assert planner_handler({}, None) == {"queued": 0, "skipped": 1}
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)

    assert outcomes == [{"batchItemFailures": []}] * 2
    assert proxy.refused == 2
    [quarantined] = [k for k in lake_keys(s3) if k.startswith("_ingest/quarantine/")]
    reason = json.loads(s3.get_object(Bucket=LAKE_BUCKET, Key=quarantined)["Body"].read())
    assert "S3 refused the GET (AccessDenied), on 2 attempts in a row" in reason["reason"]
    assert not [k for k in lake_keys(s3) if k.startswith("_ingest/failures/")]


def test_record_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"B2P_SOURCE": SOURCE, "B2P_LAKE": "s3://lake", "B2P_MAX_RECORD_BYTES": "4096"}
    config = aws_lambda.HandlerConfig.from_env(env, need_queue=False)
    assert (config.limits.max_record_bytes, config.limits.max_field_bytes) == (4096, 4096)
    assert config.limits.max_record_lines == 100
    with pytest.raises(HandlerConfigError, match="B2P_MAX_RECORD_LINES must be a whole number"):
        aws_lambda.HandlerConfig.from_env({**env, "B2P_MAX_RECORD_LINES": "ten"}, need_queue=False)


def test_threads_per_file_come_from_the_environment() -> None:
    env = {"B2P_SOURCE": SOURCE, "B2P_LAKE": "s3://lake"}
    assert (
        aws_lambda.HandlerConfig.from_env(
            {**env, "B2P_INGEST_THREADS": "3"}, need_queue=False
        ).threads
        == 3
    )
    default = aws_lambda.HandlerConfig.from_env(env, need_queue=False).threads
    assert 1 <= default <= len(os.sched_getaffinity(0))
    with pytest.raises(HandlerConfigError, match="B2P_INGEST_THREADS must be a whole number"):
        aws_lambda.HandlerConfig.from_env({**env, "B2P_INGEST_THREADS": "0"}, need_queue=False)
