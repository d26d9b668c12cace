"""`b2p ingest` against a real S3 HTTP endpoint (moto_server), driven through the real boto3 code:
S3 → S3 equals the local ingest, faults at the HTTP layer change nothing, a re-delivered object
replaces its rows wherever they were.

The helpers here (synthetic files with known per-hour counts, a storage-agnostic lake summary)
are shared with test_crash_safety and test_aws_handlers.
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import io
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from ingest.cli import main
from ingest.storage import Storage, open_storage
from tests.support.faulty_proxy import FaultyProxy

HEADER = "transaction_id,event_name,event_time,slot_id,time_position_class,site_id,ad_duration"
DAY = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
BAD_TIME = "not-a-time"  # an unparseable required value: the row is rejected


@dataclass(frozen=True)
class SyntheticFile:
    name: str
    text: str
    rows_per_partition: dict[str, int]  # "event_date=…/event_hour=…" → rows
    rejected_lines: tuple[int, ...]

    @property
    def data(self) -> bytes:
        return gzip.compress(self.text.encode(), mtime=0)


def synthetic_file(name: str, rng: random.Random, hours: Iterable[int], rows: int) -> SyntheticFile:
    """A v4 file whose rows fall in `hours` of 2024-06-01 (UTC), about 1 in 25 rejected."""
    hours = list(hours)
    lines = [HEADER]
    counts: collections.Counter[str] = collections.Counter()
    rejected: list[int] = []
    for index in range(rows):
        line_number = index + 2  # the header is line 1
        if rng.random() < 0.04:
            event_time = BAD_TIME
            rejected.append(line_number)
        else:
            moment = DAY + dt.timedelta(hours=rng.choice(hours), seconds=rng.randrange(3600))
            event_time = moment.strftime("%Y-%m-%d %H:%M:%S")
            counts[f"event_date={moment:%Y-%m-%d}/event_hour={moment.hour}"] += 1
        event = rng.choice(["slotImpression", "defaultImpression"])
        lines.append(f"t{index},{event},{event_time},s{index % 7},PREROLL,{rng.randrange(9)},15")
    return SyntheticFile(name, "\n".join(lines) + "\n", dict(counts), tuple(rejected))


def synthetic_files(count: int, seed: int, rows: int = 40) -> list[SyntheticFile]:
    rng = random.Random(seed)
    return [
        synthetic_file(
            f"2024/06/01/network_{index:02d}.csv.gz",
            rng,
            rng.sample(range(24), rng.randint(1, 3)),
            rows,
        )
        for index in range(count)
    ]


def write_local(folder: Path, files: Iterable[SyntheticFile]) -> None:
    for item in files:
        path = folder / item.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.data)


def upload(client: Any, bucket: str, prefix: str, files: Iterable[SyntheticFile]) -> None:
    for item in files:
        client.put_object(Bucket=bucket, Key=f"{prefix}{item.name}", Body=item.data)


@dataclass
class LakeSummary:
    """What must be equal between two lakes holding the same ingested files."""

    keys: set[str]  # every visible object, with the source id replaced by the file name
    rows_per_partition: dict[str, int]
    rows_per_file: dict[str, int]  # by file name (the source URI's last segments)
    rows_per_file_and_partition: dict[tuple[str, str], int]
    duplicates: int  # rows sharing (source_file, source_line)
    rows: list[tuple[Any, ...]]  # every row, minus ingested_at, sorted


def file_name(source_uri: str) -> str:
    return "/".join(source_uri.split("/")[-4:])  # 2024/06/01/network_07.csv.gz


def summarise(lake: Storage) -> LakeSummary:
    per_partition: collections.Counter[str] = collections.Counter()
    per_file: collections.Counter[str] = collections.Counter()
    per_both: collections.Counter[tuple[str, str]] = collections.Counter()
    seen: collections.Counter[tuple[str, int]] = collections.Counter()
    rows: list[tuple[Any, ...]] = []
    keys = set()
    for info in lake.list():
        keys.add(info.key)
        if not info.key.startswith("v4_events/"):
            continue
        partition = "/".join(info.key.split("/")[1:3])
        table = pq.read_table(io.BytesIO(lake.read_bytes(info.key)), partitioning=None)
        for row in table.drop_columns(["ingested_at"]).to_pylist():
            name = file_name(row["source_file"])
            per_partition[partition] += 1
            per_file[name] += 1
            per_both[(name, partition)] += 1
            seen[(row["source_file"], row["source_line"])] += 1
            rows.append((partition, name, *(v for k, v in row.items() if k != "source_file")))
    return LakeSummary(
        keys=keys,
        rows_per_partition=dict(per_partition),
        rows_per_file=dict(per_file),
        rows_per_file_and_partition=dict(per_both),
        duplicates=sum(count - 1 for count in seen.values()),
        rows=sorted(rows, key=repr),
    )


def event_keys_by_name(lake: Storage) -> set[str]:
    """Visible output keys with the source id part replaced by nothing (layout only)."""
    return {
        "/".join(info.key.split("/")[:3]) for info in lake.list() if info.key.endswith(".parquet")
    }


def expected_partition_rows(files: Iterable[SyntheticFile]) -> dict[str, int]:
    total: collections.Counter[str] = collections.Counter()
    for item in files:
        total.update(item.rows_per_partition)
    return dict(total)


def expected_file_rows(files: Iterable[SyntheticFile]) -> dict[str, int]:
    return {
        item.name: sum(item.rows_per_partition.values())
        for item in files
        if item.rows_per_partition
    }


def assert_lake_holds_exactly(lake: Storage, files: list[SyntheticFile]) -> LakeSummary:
    summary = summarise(lake)
    assert summary.rows_per_partition == expected_partition_rows(files)
    assert summary.rows_per_file == expected_file_rows(files)
    assert summary.duplicates == 0
    logged = [key for key in summary.keys if key.startswith("_ingest/log/")]
    assert len(logged) == len(files)
    assert not [key for key in summary.keys if key.startswith("_ingest/intent/")]
    return summary


# ------------------------------------------------------------------------------------ tests

SOURCE_BUCKET = "freewheel-delivery"
LAKE_BUCKET = "lake"


@pytest.fixture
def s3(aws: str) -> Any:
    client = boto3.client("s3", endpoint_url=aws)
    client.create_bucket(Bucket=SOURCE_BUCKET)
    client.create_bucket(Bucket=LAKE_BUCKET)
    return client


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
