"""Synthetic v4 files whose per-hour row counts are known in advance, and a storage-agnostic
summary of a lake, for tests that check a lake holds exactly what was delivered (S3 ingest, crash
safety, the Lambda fan-out).
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

import pyarrow.parquet as pq

from ingest.storage import Storage

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
