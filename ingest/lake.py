"""Where ingest puts things in the lake, and the writers that put them there.

    v4_events/event_date=YYYY-MM-DD/event_hour=H/<source_id>.parquet   one file per source × hour
    _ingest/log/<source_id>/<etag>.json          one record per ingested version, written last
    _ingest/rejects/<source_id>.jsonl             rejected rows of the source's current version
    _ingest/quarantine/<source_id>.json           why the source's latest version was quarantined

`<source_id>` is a readable slug of the file name plus 12 hex digits of the SHA-256 of the
source URI, so it is stable across runs, unique per source object, and never starts with `.` or
`_` (Hive, Athena and DuckDB globs skip such files).

The log key carries source id and ETag, so "is this version ingested?" is answered by one LIST
of `_ingest/log/` — no object reads, however many years of files.

Rejects are JSON lines, one per rejected row: `source_file`, `line` (physical start line, header
= 1), `column` (contract name, null for a malformed record), `reason`, `message` (what a person
reads) and `values` (the raw fields in file order).

Every output goes through `Storage.open_write`, so it becomes visible only when complete; the
writers here commit when their ExitStack closes normally and discard everything when it
unwinds with an exception.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.contract import LAKE_SCHEMA
from ingest.storage import Storage

EVENTS_PREFIX = "v4_events"
LOG_PREFIX = "_ingest/log/"
REJECTS_PREFIX = "_ingest/rejects/"
QUARANTINE_PREFIX = "_ingest/quarantine/"

# A row group per ~256k rows: tens of MB compressed, large enough for Athena splits, small
# enough that a worker buffering a few partitions stays well under its memory budget.
ROW_GROUP_ROWS = 262_144
MAX_BUFFERED_ROWS = 2 * ROW_GROUP_ROWS
_SLUG_CHARS = 60
_HASH_CHARS = 12


def source_id_for(source_uri: str) -> str:
    """`s3://b/2024/06/01/Hourly_Log.12.csv.gz` → `hourly-log-12-<12 hex of sha256(uri)>`."""
    name = source_uri.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"(\.csv)?(\.gz)?$", "", name, flags=re.IGNORECASE)
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    digest = hashlib.sha256(source_uri.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    return f"{slug or 'file'}-{digest}"


def etag_token(etag: str) -> str:
    """The ETag as a safe key segment (S3 ETags are hex, maybe `-N`; local ones `size-mtime`)."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", etag.strip('"')) or "none"


def partition_key(hour_start_ms: int, source_id: str) -> str:
    start = dt.datetime.fromtimestamp(hour_start_ms / 1000, tz=dt.UTC)
    return (
        f"{EVENTS_PREFIX}/event_date={start:%Y-%m-%d}/event_hour={start.hour}/{source_id}.parquet"
    )


def log_key(source_id: str, etag: str) -> str:
    return f"{LOG_PREFIX}{source_id}/{etag_token(etag)}.json"


def rejects_key(source_id: str) -> str:
    return f"{REJECTS_PREFIX}{source_id}.jsonl"


def quarantine_key(source_id: str) -> str:
    return f"{QUARANTINE_PREFIX}{source_id}.json"


def _json_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


class PartitionedWriter:
    """Writes one source's rows into one Parquet file per event hour, bounded in memory.

    Files are opened on `stack` (an ExitStack the caller closes after the whole source was
    read): closing it normally commits every file, an exception discards them all.
    """

    def __init__(self, lake: Storage, source_id: str, stack: contextlib.ExitStack) -> None:
        self._lake = lake
        self._source_id = source_id
        self._stack = stack
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._buffers: dict[int, list[pa.Table]] = {}
        self._buffered_rows = 0
        self.rows_written = 0

    @property
    def keys(self) -> list[str]:
        return sorted(partition_key(hour, self._source_id) for hour in self._writers)

    def write(self, table: pa.Table) -> None:
        """Append rows (LAKE_SCHEMA, event_time never null) to their hour partitions."""
        if table.num_rows == 0:
            return
        hour_starts = pc.cast(
            pc.floor_temporal(table.column("event_time"), unit="hour"), pa.int64()
        )
        hours = pc.unique(hour_starts).to_pylist()
        if len(hours) == 1:
            self._buffer(hours[0], table)  # the usual block: no copy needed
        else:
            for hour_ms in hours:
                self._buffer(hour_ms, table.filter(pc.equal(hour_starts, hour_ms)))
        if self._buffered_rows > MAX_BUFFERED_ROWS:
            for hour in list(self._buffers):
                self._flush(hour)

    def finish(self) -> None:
        """Write what is buffered; the files commit when the caller's ExitStack closes."""
        for hour in list(self._buffers):
            self._flush(hour)

    def _buffer(self, hour_ms: int, rows: pa.Table) -> None:
        if hour_ms not in self._writers:
            self._writers[hour_ms] = self._open(hour_ms)
            self._buffers[hour_ms] = []
        self._buffers[hour_ms].append(rows)
        self._buffered_rows += rows.num_rows
        if sum(part.num_rows for part in self._buffers[hour_ms]) >= ROW_GROUP_ROWS:
            self._flush(hour_ms)

    def _flush(self, hour_ms: int) -> None:
        parts = self._buffers[hour_ms]
        if not parts:
            return
        rows = pa.concat_tables(parts)
        self._writers[hour_ms].write_table(rows, row_group_size=ROW_GROUP_ROWS)
        self._buffers[hour_ms] = []
        self._buffered_rows -= rows.num_rows
        self.rows_written += rows.num_rows

    def _open(self, hour_ms: int) -> pq.ParquetWriter:
        handle: BinaryIO = self._stack.enter_context(
            self._lake.open_write(partition_key(hour_ms, self._source_id))
        )
        writer = pq.ParquetWriter(handle, LAKE_SCHEMA, compression="zstd")
        # LIFO: the footer is written before open_write commits (or discards) the file
        self._stack.callback(writer.close)
        return writer


class RejectsWriter:
    """JSON lines of rejected rows, opened on first use on the caller's ExitStack."""

    def __init__(self, lake: Storage, source_id: str, stack: contextlib.ExitStack) -> None:
        self._lake = lake
        self._source_id = source_id
        self._stack = stack
        self._handle: BinaryIO | None = None
        self.count = 0
        self.first_message: str | None = None

    @property
    def key(self) -> str | None:
        return rejects_key(self._source_id) if self._handle is not None else None

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if self._handle is None:
                self._handle = self._stack.enter_context(
                    self._lake.open_write(rejects_key(self._source_id))
                )
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
            self._handle.write(line.encode("utf-8"))
            self.count += 1
            if self.first_message is None:
                self.first_message = record["message"]


class IngestLog:
    """The ingest log of a lake: which source versions are done, and what they produced."""

    def __init__(self, lake: Storage) -> None:
        self._lake = lake

    def logged_versions(self) -> set[tuple[str, str]]:
        """(source_id, etag token) of every logged version, from one listing."""
        versions: set[tuple[str, str]] = set()
        for info in self._lake.list(LOG_PREFIX):
            parts = info.key[len(LOG_PREFIX) :].split("/")
            if len(parts) == 2 and parts[1].endswith(".json"):
                versions.add((parts[0], parts[1][: -len(".json")]))
        return versions

    def quarantined_sources(self) -> set[str]:
        return {
            info.key[len(QUARANTINE_PREFIX) : -len(".json")]
            for info in self._lake.list(QUARANTINE_PREFIX)
            if info.key.endswith(".json")
        }

    def records_for(self, source_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, record) of every logged version of one source."""
        for info in self._lake.list(f"{LOG_PREFIX}{source_id}/"):
            yield info.key, json.loads(self._lake.read_bytes(info.key))

    def write(self, record: dict[str, Any]) -> str:
        key = log_key(record["source_id"], record["etag"])
        self._lake.write_bytes(key, _json_bytes(record))
        return key


def write_quarantine_record(lake: Storage, source_id: str, record: dict[str, Any]) -> str:
    key = quarantine_key(source_id)
    lake.write_bytes(key, _json_bytes(record))
    return key
