"""Where ingest puts things in the lake, the writers that put them there, and the protocol
that keeps the lake exact when runs are killed, overlap or meet a re-delivered file.

    v4_events/event_date=YYYY-MM-DD/event_hour=H/<source_id>.parquet   one file per source × hour
    _ingest/intent/<source_id>/<etag>-<attempt>.json  outputs an attempt is about to make visible
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

Crash and concurrency protocol (one attempt = one source object version, `ingest_object`):

1. Read the whole object (If-Match on the listed ETag) and write every partition and the
   rejects file through `Storage.open_write`: a local temp file or an S3 multipart upload,
   invisible until committed. A failure or a kill here leaves nothing visible.
2. Write the INTENT record `_ingest/intent/<source_id>/<etag>-<attempt>.json` listing the
   output keys (partitions + rejects) this attempt is about to commit.
3. Commit the outputs one by one (rename / PUT / CompleteMultipartUpload). Output names are
   deterministic (`<source_id>` per hour, `<source_id>.jsonl`), so a commit REPLACES what an
   earlier attempt or version wrote under that name — never appends, never duplicates.
4. Clean up: for every other record of this source id — log records of other ETags and intent
   records of any other attempt — delete the outputs it lists that this attempt did not just
   write, then delete the record itself.
5. Write the LOG record `_ingest/log/<source_id>/<etag>.json` (status, row counts, outputs).
6. Delete this attempt's own intent record.

Invariant: every visible output of a source id is listed by a log or intent record of that
source id that still exists. Step 2 precedes step 3; step 4 deletes a record only after its
outputs are deleted or replaced by ours (which our own intent covers); step 6 runs after the
log record that lists the same outputs. So whatever moment a run is SIGKILLed at:

- before step 5, the version has no log record, so the next run ingests it again and its step
  4 finds — through the intent and log records — every output any earlier attempt or version
  left, including partitions the new version no longer touches (a re-delivered file whose rows
  moved to other hours); stale ones are deleted, the rest are overwritten. A kill during step
  3 leaves a mix of new and old partitions visible until that next run (S3 has no multi-object
  transaction); it never leaves a partial file and never two copies of a row.
- after step 5, the version is done; a leftover intent (kill before step 6) lists exactly the
  logged outputs and is removed by the source's next re-delivery.

Scanning `v4_events/*/*/<source_id>.parquet` instead of keeping intent records would list the
whole lake per file on S3 (no suffix filter), so the records are the index: cleanup costs two
LISTs (`_ingest/log/<source_id>/`, `_ingest/intent/<source_id>/`) per ingested file.

Two runs ingesting the same version at once write byte-for-byte the same rows under the same
names, so whichever commit lands last wins and the row set is the same; neither deletes the
other's outputs as stale, because both list the same keys and step 4 only deletes keys the
deleting attempt did not write. (Runs racing on two DIFFERENT versions of one object end with
whichever finishes last; if that is the older version, its log record lacks the newer ETag and
the next run ingests the newer one, converging on it.)

Leftovers of a kill: a local temp file (`.tmp-*`, ignored by every reader) is removed by
`Storage.sweep_temp_files` at the start of the next CLI run — only when no live writer holds its
lock, so a concurrent run's temp files are safe. An S3 multipart upload is invisible and is
removed by the lake bucket's AbortIncompleteMultipartUpload lifecycle rule.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.contract import LAKE_SCHEMA
from ingest.storage import Storage

EVENTS_PREFIX = "v4_events"
LOG_PREFIX = "_ingest/log/"
INTENT_PREFIX = "_ingest/intent/"
REJECTS_PREFIX = "_ingest/rejects/"
QUARANTINE_PREFIX = "_ingest/quarantine/"

# Rows are buffered as Arrow tables (~250 B a row uncompressed) until a partition has a row
# group's worth, and all partitions are flushed once the total passes MAX_BUFFERED_ROWS. 128k
# rows (a few MB of zstd Parquet per row group) keeps that buffer near 35 MB: with 256k/512k
# the 1 GB benchmark peaked ~100 MB higher (benchmarks/ingest_memory.py).
ROW_GROUP_ROWS = 131_072
MAX_BUFFERED_ROWS = ROW_GROUP_ROWS
# Dictionary-encode only columns with few distinct values per file: on the ones that are
# nearly unique (transaction_id, event_time, source_line, video_asset_id, ad_id, ...) a
# dictionary only costs a hash table and a fallback to plain. On the benchmark hour this wrote
# in 0.85 s instead of 1.13 s and 13.8 MB instead of 20.1 MB (docs/performance.md).
DICTIONARY_COLUMNS = (
    "event_name",
    "time_position_class",
    "sales_type",
    "extra_columns",
    "source_file",
    "site_id",
    "site_section_id",
    "series_id",
    "network_id",
    "max_slot_duration",
    "ad_duration",
)
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


def intent_key(source_id: str, etag: str, attempt: str) -> str:
    return f"{INTENT_PREFIX}{source_id}/{etag_token(etag)}-{attempt}.json"


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:16]


def rejects_key(source_id: str) -> str:
    return f"{REJECTS_PREFIX}{source_id}.jsonl"


def quarantine_key(source_id: str) -> str:
    return f"{QUARANTINE_PREFIX}{source_id}.json"


def listed_outputs(record: dict[str, Any]) -> list[str]:
    """The lake keys a log record (`output_keys`, `rejects_key`) or intent (`outputs`) lists."""
    if "outputs" in record:
        return list(record["outputs"])
    outputs = list(record.get("output_keys") or [])
    if record.get("rejects_key"):
        outputs.append(record["rejects_key"])
    return outputs


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
        writer = pq.ParquetWriter(
            handle, LAKE_SCHEMA, compression="zstd", use_dictionary=list(DICTIONARY_COLUMNS)
        )
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

    def is_logged(self, source_id: str, etag: str) -> bool:
        """Whether this version of one source is in the log (one LIST of its folder)."""
        wanted = log_key(source_id, etag)
        return any(info.key == wanted for info in self._lake.list(f"{LOG_PREFIX}{source_id}/"))

    def quarantined_sources(self) -> set[str]:
        return {
            info.key[len(QUARANTINE_PREFIX) : -len(".json")]
            for info in self._lake.list(QUARANTINE_PREFIX)
            if info.key.endswith(".json")
        }

    def records_for(self, source_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, record) of every log and intent record of one source: together they list
        every output of the source that may be visible (see the protocol above)."""
        for prefix in (f"{LOG_PREFIX}{source_id}/", f"{INTENT_PREFIX}{source_id}/"):
            for info in self._lake.list(prefix):
                try:
                    data = self._lake.read_bytes(info.key)
                except FileNotFoundError:
                    continue  # removed by a concurrent attempt after the listing
                yield info.key, json.loads(data)

    def write(self, record: dict[str, Any]) -> str:
        key = log_key(record["source_id"], record["etag"])
        self._lake.write_bytes(key, _json_bytes(record))
        return key

    def remove_settled_intents(self, logged: set[tuple[str, str]]) -> int:
        """Delete intents left by a kill between step 5 and step 6 of the protocol: those of a
        logged version whose log record lists every output the intent does. Returns how many."""
        removed = 0
        for info in self._lake.list(INTENT_PREFIX):
            source_id, _, name = info.key[len(INTENT_PREFIX) :].partition("/")
            token = name.rsplit("-", 1)[0]
            if (source_id, token) not in logged:
                continue  # an attempt in progress, or killed before its log record: needed
            try:
                intent = json.loads(self._lake.read_bytes(info.key))
                record = json.loads(self._lake.read_bytes(f"{LOG_PREFIX}{source_id}/{token}.json"))
            except FileNotFoundError:
                continue  # changed meanwhile; leave it to the next run
            if set(listed_outputs(intent)) <= set(listed_outputs(record)):
                self._lake.delete(info.key)
                removed += 1
        return removed

    def write_intent(self, source_id: str, etag: str, attempt: str, outputs: list[str]) -> str:
        key = intent_key(source_id, etag, attempt)
        record = {"source_id": source_id, "etag": etag, "attempt": attempt, "outputs": outputs}
        self._lake.write_bytes(key, _json_bytes(record))
        return key


def write_quarantine_record(lake: Storage, source_id: str, record: dict[str, Any]) -> str:
    key = quarantine_key(source_id)
    lake.write_bytes(key, _json_bytes(record))
    return key
