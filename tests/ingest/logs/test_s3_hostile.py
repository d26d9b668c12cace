"""The S3 side of issue 11, against moto_server through the real boto3 code: the checks before
work (a missing bucket, a prefix that is an object, a lake that refuses writes), a GET refused
with 403 AccessDenied that is retried once and then quarantined, and a poison file quarantined
like a local one. Refusals come from `FaultyProxy(forbidden=…)`, which answers as S3 does when
a policy denies the request."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from ingest.cli import main
from ingest.storage import open_storage
from tests.ingest.logs.conftest import LAKE_BUCKET, SOURCE_BUCKET
from tests.support.faulty_proxy import FaultyProxy
from tests.support.synthetic_lake import (
    assert_lake_holds_exactly,
    expected_file_rows,
    summarise,
    synthetic_files,
    upload,
)

SOURCE = f"s3://{SOURCE_BUCKET}/v4"
LAKE = f"s3://{LAKE_BUCKET}/data"


def ingest(source: str, lake: str, *extra: str) -> int:
    return main(["ingest", "--source", source, "--lake", lake, *extra])


def errors(stderr: str) -> list[str]:
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [entry["message"] for entry in entries if entry["level"] == "error"]


def lake_keys(s3: Any, prefix: str = "") -> list[str]:
    listed = s3.list_objects_v2(Bucket=LAKE_BUCKET, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in listed]


@pytest.mark.parametrize(
    ("source", "lake", "message"),
    [
        ("s3://no-such-bucket/v4", LAKE, "--source s3://no-such-bucket/v4: the bucket"),
        (SOURCE, "s3://no-such-lake", "--lake s3://no-such-lake: the bucket no-such-lake"),
        (
            f"{SOURCE}/2024/06/01/network_00.csv.gz",
            LAKE,
            "network_00.csv.gz is an object, not a prefix",
        ),
    ],
    ids=["source bucket missing", "lake bucket missing", "source is an object"],
)
def test_a_source_or_lake_that_cannot_be_used_stops_the_run_before_anything(
    s3: Any, capsys: Any, source: str, lake: str, message: str
) -> None:
    upload(s3, SOURCE_BUCKET, "v4/", synthetic_files(2, seed=31))

    assert ingest(source, lake) == 1

    [error] = errors(capsys.readouterr().err)
    assert message in error
    assert lake_keys(s3) == []


def test_a_lake_that_refuses_writes_stops_the_run_before_any_file_is_read(
    s3: Any, aws: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(s3, SOURCE_BUCKET, "v4/", synthetic_files(20, seed=32))

    def read_only_lake(method: str, path: str) -> bool:
        return method in ("PUT", "POST", "DELETE") and path.startswith(f"/{LAKE_BUCKET}/")

    with FaultyProxy(aws, forbidden=read_only_lake) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        status = ingest(SOURCE, LAKE)
        source_reads = [p for m, p, _ in proxy.log if m == "GET" and "network_" in p]

    assert status == 1
    [error] = errors(capsys.readouterr().err)
    assert error.startswith(f"--lake {LAKE}: access denied when trying to write to it")
    assert proxy.refused == 1  # the probe: nothing else was tried
    assert source_reads == []


def test_a_get_refused_with_403_is_retried_once_then_quarantined(
    s3: Any, aws: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = synthetic_files(3, seed=33)
    upload(s3, SOURCE_BUCKET, "v4/", files)
    secret = files[1].name

    def no_read_of_secret(method: str, path: str) -> bool:
        return method == "GET" and path.startswith(f"/{SOURCE_BUCKET}/v4/{secret}")

    with FaultyProxy(aws, forbidden=no_read_of_secret) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        first = ingest(SOURCE, LAKE)
        first_errors = errors(capsys.readouterr().err)
        second = ingest(SOURCE, LAKE, "--workers", "2")
        second_errors = errors(capsys.readouterr().err)
        third = ingest(SOURCE, LAKE)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)

    assert (first, second, third) == (1, 2, 0)
    uri = f"{SOURCE}/{secret}"
    [message] = first_errors
    assert message.startswith(f"{uri} cannot be read: S3 refused the GET (AccessDenied)")
    assert "quarantines it if it fails so again" in message and "s3:GetObject" in message
    [message] = second_errors
    assert "on 2 attempts in a row" in message and "--retry-quarantined" in message
    others = [item for item in files if item.name != secret]
    lake = open_storage(LAKE)
    assert summarise(lake).rows_per_file == expected_file_rows(others)  # the others went on
    assert len(lake_keys(s3, "data/_ingest/log/")) == 3  # two ingested, one quarantined
    assert len(lake_keys(s3, "data/_ingest/quarantine/")) == 1
    assert lake_keys(s3, "data/_ingest/failures/") == []

    # access granted: --retry-quarantined ingests it
    assert ingest(SOURCE, LAKE, "--retry-quarantined") == 0
    assert_lake_holds_exactly(lake, files)


def test_a_poison_object_is_quarantined_like_a_local_file(s3: Any, capsys: Any) -> None:
    files = synthetic_files(1, seed=34)
    upload(s3, SOURCE_BUCKET, "v4/", files)
    s3.put_object(
        Bucket=SOURCE_BUCKET,
        Key="v4/2024/06/01/zeros.csv.gz",
        Body=gzip.compress(bytes(16 << 20), compresslevel=1),
    )

    assert ingest(SOURCE, LAKE) == 2
    [message] = errors(capsys.readouterr().err)
    assert "zeros.csv.gz: it holds NUL bytes" in message
    assert ingest(SOURCE, LAKE) == 0
