"""`b2p ingest` against a real S3 HTTP endpoint (moto_server), driven through the real boto3 code:
S3 → S3 equals the local ingest, faults at the HTTP layer change nothing, a re-delivered object
replaces its rows wherever they were.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import boto3
import pytest

from ingest.cli import main
from ingest.storage import open_storage
from tests.ingest.logs.conftest import LAKE_BUCKET, SOURCE_BUCKET
from tests.support.faulty_proxy import FaultyProxy
from tests.support.synthetic_lake import (
    assert_lake_holds_exactly,
    event_keys_by_name,
    synthetic_file,
    synthetic_files,
    upload,
    write_local,
)


def ingest(source: str, lake: str, *extra: str) -> int:
    return main(["ingest", "--source", source, "--lake", lake, *extra])


def test_s3_to_s3_matches_the_local_ingest_row_for_row(s3: Any, tmp_path: Path) -> None:
    files = synthetic_files(5, seed=1)
    write_local(tmp_path / "source", files)
    upload(s3, SOURCE_BUCKET, "v4/", files)

    assert ingest(str(tmp_path / "source"), str(tmp_path / "lake")) == 0
    assert ingest(f"s3://{SOURCE_BUCKET}/v4/", f"s3://{LAKE_BUCKET}/data", "--workers", "2") == 0

    local = assert_lake_holds_exactly(open_storage(tmp_path / "lake"), files)
    remote = assert_lake_holds_exactly(open_storage(f"s3://{LAKE_BUCKET}/data"), files)
    assert remote.rows == local.rows
    assert remote.rows_per_file_and_partition == local.rows_per_file_and_partition
    rejects = [k for k in remote.keys if k.startswith("_ingest/rejects/")]
    assert len(rejects) == sum(1 for item in files if item.rejected_lines)


def test_faults_at_the_http_layer_leave_exactly_the_clean_lake(
    s3: Any, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = synthetic_files(6, seed=2)
    upload(s3, SOURCE_BUCKET, "v4/", files)
    with FaultyProxy(aws, fault_rate=0.2, seed=7) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        status = ingest(f"s3://{SOURCE_BUCKET}/v4", f"s3://{LAKE_BUCKET}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)

    assert status == 0
    assert proxy.injected["500"] + proxy.injected["503"] > 0
    assert proxy.injected["drop"] + proxy.injected["drop_after"] + proxy.injected["cut"] > 0
    assert_lake_holds_exactly(open_storage(f"s3://{LAKE_BUCKET}"), files)
    assert s3.list_multipart_uploads(Bucket=LAKE_BUCKET).get("Uploads", []) == []


def test_a_redelivered_object_replaces_its_rows_also_when_they_move_hours(s3: Any) -> None:
    rng = random.Random(3)
    first = synthetic_file("2024/06/01/network_01.csv.gz", rng, [7, 8], 60)
    moved = synthetic_file(first.name, rng, [9], 25)
    assert first.rejected_lines and set(first.rows_per_partition) == {
        "event_date=2024-06-01/event_hour=7",
        "event_date=2024-06-01/event_hour=8",
    }
    other = synthetic_file("2024/06/01/network_02.csv.gz", rng, [8], 10)
    source, lake_uri = f"s3://{SOURCE_BUCKET}/v4", f"s3://{LAKE_BUCKET}"
    lake = open_storage(lake_uri)

    upload(s3, SOURCE_BUCKET, "v4/", [first, other])
    assert ingest(source, lake_uri) == 0
    assert_lake_holds_exactly(lake, [first, other])

    upload(s3, SOURCE_BUCKET, "v4/", [moved])  # same key, new ETag
    assert ingest(source, lake_uri) == 0

    summary = assert_lake_holds_exactly(lake, [moved, other])
    assert summary.rows_per_file_and_partition == {
        (moved.name, "event_date=2024-06-01/event_hour=9"): 25 - len(moved.rejected_lines),
        (other.name, "event_date=2024-06-01/event_hour=8"): 10 - len(other.rejected_lines),
    }
    # hour 7 held only the first version's rows: its partition is gone, not emptied
    assert event_keys_by_name(lake) == {
        "v4_events/event_date=2024-06-01/event_hour=8",
        "v4_events/event_date=2024-06-01/event_hour=9",
    }
    rejected = [
        line
        for key in summary.keys
        if key.startswith("_ingest/rejects/")
        for line in lake.read_bytes(key).decode().splitlines()
        if moved.name in line
    ]
    assert len(rejected) == len(moved.rejected_lines)  # replaced, not appended to


def test_source_read_through_an_assumed_role_from_flags_or_environment(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    role_arn = boto3.client("iam").create_role(
        RoleName="freewheel-read",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )["Role"]["Arn"]
    files = synthetic_files(2, seed=4)
    upload(s3, SOURCE_BUCKET, "v4/", files)
    assumed: list[dict[str, Any]] = []

    def record_assume_role(params: dict[str, Any], **_: Any) -> None:
        assumed.append(params)

    real_client = boto3.Session.client

    def client(self: boto3.Session, name: str, *args: Any, **kwargs: Any) -> Any:
        made = real_client(self, name, *args, **kwargs)
        if name == "sts":
            made.meta.events.register("provide-client-params.sts.AssumeRole", record_assume_role)
        return made

    monkeypatch.setattr(boto3.Session, "client", client)
    monkeypatch.setenv("B2P_SOURCE_EXTERNAL_ID", "fw-external")
    args = ["--source-role-arn", role_arn]
    assert ingest(f"s3://{SOURCE_BUCKET}/v4", f"s3://{LAKE_BUCKET}", *args) == 0

    assert [(p["RoleArn"], p.get("ExternalId")) for p in assumed] == [(role_arn, "fw-external")]
    assert_lake_holds_exactly(open_storage(f"s3://{LAKE_BUCKET}"), files)


def test_a_role_for_a_local_source_is_a_user_error(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "source").mkdir()
    arn = "arn:aws:iam::123456789012:role/x"
    assert ingest(str(tmp_path / "source"), str(tmp_path / "lake"), "--source-role-arn", arn) == 1
    assert "applies to an s3:// source" in capsys.readouterr().err
