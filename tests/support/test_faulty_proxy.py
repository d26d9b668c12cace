"""The fault proxy forwards faithfully, and each fault reaches the client as S3's would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.faulty_proxy import FAULTS, FaultyProxy

BUCKET = "proxy-test"
NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=10)


@pytest.fixture
def direct(aws: str) -> Any:
    client = boto3.client("s3", endpoint_url=aws)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def through(aws: str, direct: Any) -> Iterator[Any]:
    """Start a proxy with the given options; yields (proxy, client without retries)."""
    proxies: list[FaultyProxy] = []

    def start(**options: Any) -> tuple[FaultyProxy, Any]:
        proxy = FaultyProxy(aws, **options).start()
        proxies.append(proxy)
        return proxy, boto3.client("s3", endpoint_url=proxy.endpoint, config=NO_RETRIES)

    yield start
    for proxy in proxies:
        proxy.stop()


def test_forwards_requests_and_responses_unchanged(through: Any, direct: Any) -> None:
    proxy, client = through()
    data = os.urandom(300_000)

    client.put_object(Bucket=BUCKET, Key="a/b c.bin", Body=data, Metadata={"origin": "proxy"})
    client.put_object(Bucket=BUCKET, Key="a/other.bin", Body=b"2")
    head = client.head_object(Bucket=BUCKET, Key="a/b c.bin")
    ranged = client.get_object(Bucket=BUCKET, Key="a/b c.bin", Range="bytes=1000-1999")
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="a/", MaxKeys=1)
    client.delete_object(Bucket=BUCKET, Key="a/other.bin")

    assert direct.get_object(Bucket=BUCKET, Key="a/b c.bin")["Body"].read() == data
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"origin": "proxy"}
    assert ranged["Body"].read() == data[1000:2000]
    assert ranged["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert [item["Key"] for item in listed["Contents"]] == ["a/b c.bin"]
    assert listed["IsTruncated"] is True
    assert [item["Key"] for item in direct.list_objects_v2(Bucket=BUCKET)["Contents"]] == [
        "a/b c.bin"
    ]
    assert [(method, fault) for method, _, fault in proxy.log] == [
        ("PUT", None),
        ("PUT", None),
        ("HEAD", None),
        ("GET", None),
        ("GET", None),
        ("DELETE", None),
    ]


@pytest.mark.parametrize(
    ("fault", "status", "code"), [("500", 500, "InternalError"), ("503", 503, "SlowDown")]
)
def test_error_faults_answer_like_s3_without_reaching_upstream(
    through: Any, direct: Any, fault: str, status: int, code: str
) -> None:
    _, client = through(schedule=[fault])

    with pytest.raises(ClientError) as raised:
        client.put_object(Bucket=BUCKET, Key="k", Body=b"v")

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert raised.value.response["Error"]["Code"] == code
    assert "Contents" not in direct.list_objects_v2(Bucket=BUCKET)


def test_drop_closes_before_upstream_sees_the_request(through: Any, direct: Any) -> None:
    _, client = through(schedule=["drop"])

    with pytest.raises(BotoCoreError):
        client.put_object(Bucket=BUCKET, Key="k", Body=b"v")

    assert "Contents" not in direct.list_objects_v2(Bucket=BUCKET)


def test_drop_after_applies_the_request_but_loses_the_answer(through: Any, direct: Any) -> None:
    _, client = through(schedule=["drop_after"])

    with pytest.raises(BotoCoreError):
        client.put_object(Bucket=BUCKET, Key="k", Body=b"v")

    assert direct.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"v"


def test_cut_sends_headers_then_half_the_body(through: Any, direct: Any) -> None:
    data = os.urandom(200_000)
    direct.put_object(Bucket=BUCKET, Key="k", Body=data)
    _, client = through(schedule=["cut"])

    response = client.get_object(Bucket=BUCKET, Key="k")
    assert response["ContentLength"] == len(data)
    received = b""
    with pytest.raises(BotoCoreError):
        while chunk := response["Body"].read(10_000):
            received += chunk

    assert received == data[:100_000]


def test_faults_follow_the_seeded_rate(aws: str) -> None:
    def draws(seed: int) -> list[str | None]:
        proxy = FaultyProxy(aws, fault_rate=0.25, seed=seed)
        try:
            return [proxy.choose_fault("GET", "/") for _ in range(2000)]
        finally:
            proxy.stop()

    first, again, other = draws(1), draws(1), draws(2)

    assert first == again
    assert first != other
    assert 0.22 < sum(f is not None for f in first) / len(first) < 0.28
    assert {f for f in first if f} == set(FAULTS)


def test_schedule_comes_before_the_rate(aws: str) -> None:
    proxy = FaultyProxy(aws, fault_rate=0.0, schedule=["cut", None, "503"])
    try:
        assert [proxy.choose_fault("GET", "/") for _ in range(5)] == [
            "cut",
            None,
            "503",
            None,
            None,
        ]
        assert proxy.injected == {"cut": 1, "503": 1}
    finally:
        proxy.stop()


def test_unknown_fault_is_refused(aws: str) -> None:
    with pytest.raises(ValueError, match="unknown faults"):
        FaultyProxy(aws, faults=["teapot"])
