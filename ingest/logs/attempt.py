"""One attempt: one source object version read, validated and committed into the lake.

`ingest_object(source, key, etag, lake)` reads the object pinned to the ETag it was planned with,
turns its records into typed lake rows and rejects, and hands them to the lake's commit protocol
(`ingest.logs.lake.VersionCommit`): nothing is visible until the whole object was read, and the
ingest-log record is written last, so a log record means "complete" and a run that dies before it
leaves the object to the next run. The CLI, its worker processes and the Lambda worker all call
this one function (`ingest.logs.runner`, `ingest.aws_lambda`).

If the object was replaced after it was listed, the read stops before anything is visible
(`ObjectChanged`, nothing logged) and the next run ingests the new version.

Quarantine: a file that cannot be read at all (`UnreadableFile`, `HeaderError`) leaves nothing
of this attempt in the lake and does not touch the outputs of an earlier good version; its
reason goes to `_ingest/quarantine/<source_id>.json` and its log record has status
`quarantined`, so the same version is not retried (a re-delivery has a new ETag; pass
`--retry-quarantined` after fixing e.g. the column aliases). So is a file that was read but
not understood: all its rows rejected, or more than the feed's `max_rejected_share`
(`ingest.logs.verdict`, the last step of the read).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ingest.logs.contract import (
    LAKE_SCHEMA,
    FeedMapping,
    HeaderError,
    HeaderMapping,
    as_feed_mapping,
    map_header,
)
from ingest.logs.lake import StagedOutputs, VersionCommit, quarantine_key, source_id_for
from ingest.logs.reader import BLOCK_BYTES, LogFileReader, RawBlock, UnreadableFile
from ingest.logs.values import ValidatedBlock, validate_block
from ingest.logs.verdict import NotUnderstood, RejectTally, mapping_name, not_understood
from ingest.storage import Storage

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_QUARANTINED = "quarantined"
STATUS_FAILED = "failed"  # an unexpected error (I/O, bug): not logged, retried by the next run
STATUS_CHANGED = "changed"  # replaced after it was listed: not logged, the next run takes it


@dataclass
class IngestResult:
    uri: str  # of the source object
    key: str
    etag: str
    size: int | None
    source_id: str
    status: str = STATUS_OK
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    output_keys: list[str] = field(default_factory=list)
    rejects_key: str | None = None
    uncompressed_bytes: int = 0
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    error: str | None = None
    first_reject: str | None = None  # the first rejected row's message, for the run's log

    @classmethod
    def unfinished(
        cls, source: Storage, key: str, etag: str, size: int | None, status: str, error: str
    ) -> IngestResult:
        """The result of an attempt that ended before the protocol (nothing logged)."""
        uri = source.uri(key)
        return cls(uri, key, etag, size, source_id_for(uri), status=status, error=error)

    def log_record(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[int], None]


def ingest_object(
    source: Storage,
    key: str,
    etag: str,
    lake: Storage,
    *,
    size: int | None = None,
    aliases: FeedMapping | Mapping[str, str] | None = None,
    block_bytes: int = BLOCK_BYTES,
    on_progress: ProgressCallback | None = None,
) -> IngestResult:
    """Ingest one source object version into the lake; the log record is written last.

    `aliases` is the feed's mapping file (`--column-aliases`), or plain aliases.

    Raises only for unexpected problems (I/O, bugs, `ObjectChanged`); bad input ends as
    `quarantined`.
    """
    clock = time.monotonic()
    started = _utc_now()
    source_uri = source.uri(key)
    result = IngestResult(source_uri, key, etag, size, source_id_for(source_uri))
    result.started_at = _iso(started)
    commit = VersionCommit(lake, result.source_id, etag)
    try:
        with commit.staged() as outputs:
            _read_into(
                source, outputs, result, as_feed_mapping(aliases), block_bytes, on_progress, started
            )
    except (UnreadableFile, HeaderError, NotUnderstood) as exc:
        result.status = STATUS_QUARANTINED
        result.error = f"{source_uri}: {exc}"
        result.rows_written = result.rows_rejected = result.rows_read = 0
        result.output_keys, result.rejects_key, result.first_reject = [], None, None
        _finish(result, clock)
        commit.quarantine(result.log_record(), _quarantine_record(result))
        return result
    _finish(result, clock)
    commit.complete(result.log_record())
    return result


def _read_into(
    source: Storage,
    outputs: StagedOutputs,
    result: IngestResult,
    feed: FeedMapping,
    block_bytes: int,
    on_progress: ProgressCallback | None,
    started: dt.datetime,
) -> None:
    """Read the whole object into the staged partitions and rejects, counting every record."""
    ingested_at = pa.scalar(started.replace(tzinfo=None), pa.timestamp("ms"))
    partitions, rejects = outputs.partitions, outputs.rejects
    with source.open_read(result.key, etag=result.etag) as raw:
        reader = LogFileReader(_Counting(raw, on_progress), result.key, block_bytes)
        mapping = map_header(reader.header, feed)
        tally = RejectTally(mapping)
        for block in reader.blocks():
            result.rows_read += block.num_rows + len(block.invalid)
            rejects.write(tally.observe(_malformed_rejects(block, result.uri)))
            validated = validate_block(block.columns, mapping)
            failed = validated.failed_mask()
            if failed is not None:
                rejects.write(
                    tally.observe(_invalid_value_rejects(block, validated, mapping, result))
                )
            rows = _lake_rows(validated, block, result.uri, ingested_at)
            partitions.write(rows if failed is None else rows.filter(pc.invert(failed)))
    partitions.finish()
    if result.rows_read != partitions.rows_written + rejects.count:
        # a bug, not bad input: raising here discards this attempt's outputs
        raise RuntimeError(
            f"{result.uri}: {result.rows_read} rows read but {partitions.rows_written} "
            f"written + {rejects.count} rejected"
        )
    _check_understood(result.rows_read, tally, feed, source.root)
    result.uncompressed_bytes = reader.uncompressed_bytes
    result.output_keys = partitions.keys
    result.rejects_key = rejects.key
    result.rows_written = partitions.rows_written
    result.rows_rejected = rejects.count
    result.first_reject = rejects.first_message


def _check_understood(
    rows_read: int, tally: RejectTally, feed: FeedMapping, source_root: str
) -> None:
    """The last step of a read: a file with (nearly) every row rejected was not understood, and
    raising here, inside the staged block, discards all it wrote (`ingest.logs.verdict`)."""
    reason = not_understood(rows_read, tally, feed.max_rejected_share, source_root)
    if reason is not None:
        raise NotUnderstood(reason)


def _lake_rows(
    validated: ValidatedBlock, block: RawBlock, source_uri: str, ingested_at: pa.Scalar
) -> pa.Table:
    rows = block.num_rows
    columns = dict(validated.columns)
    columns["source_file"] = pa.repeat(pa.scalar(source_uri, pa.string()), rows)
    columns["source_line"] = block.lines
    columns["ingested_at"] = pa.repeat(ingested_at, rows)
    return pa.table([columns[name] for name in LAKE_SCHEMA.names], schema=LAKE_SCHEMA)


def _malformed_rejects(block: RawBlock, source_uri: str) -> Iterable[dict[str, Any]]:
    for record in block.invalid:
        yield {
            "source_file": source_uri,
            "line": record.line,
            "column": None,
            "reason": record.reason,
            "message": f"{source_uri} line {record.line}: the record {record.reason}; fix the "
            "quoting or field count and re-deliver the file",
            "values": record.values,
        }


def _invalid_value_rejects(
    block: RawBlock, validated: ValidatedBlock, mapping: HeaderMapping, result: IngestResult
) -> Iterable[dict[str, Any]]:
    first_problem: dict[int, Any] = {}
    for problem in validated.problems:
        for row in pc.indices_nonzero(problem.mask).to_pylist():
            first_problem.setdefault(row, problem)
    rows = sorted(first_problem)
    lines = block.lines.take(pa.array(rows, pa.int64())).to_pylist()
    values = [column.take(pa.array(rows, pa.int64())).to_pylist() for column in block.columns]
    for index, (row, line) in enumerate(zip(rows, lines, strict=True)):
        problem = first_problem[row]
        # a key built from several columns shows each part: 'preroll' + ''
        shown = " + ".join(
            repr(values[position][index]) for position in mapping.positions_of(problem.column)
        )
        named = mapping_name(mapping, problem.column)
        yield {
            "source_file": result.uri,
            "line": line,
            "column": problem.column,
            "reason": problem.reason,
            "message": f"{result.uri} line {line}, column {named}: value {shown} "
            f"{problem.reason}; correct the value and re-deliver the file",
            "values": [column_values[index] for column_values in values],
        }


def _quarantine_record(result: IngestResult) -> dict[str, Any]:
    return {
        "uri": result.uri,
        "key": result.key,
        "etag": result.etag,
        "size": result.size,
        "source_id": result.source_id,
        "reason": result.error,
        "quarantined_at": result.finished_at,
    }


def _finish(result: IngestResult, clock: float) -> None:
    result.finished_at = _iso(_utc_now())
    result.seconds = round(time.monotonic() - clock, 3)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Counting:
    """A read-only stream that reports how many (compressed) bytes were read."""

    def __init__(self, raw: BinaryIO, on_progress: ProgressCallback | None) -> None:
        self._raw = raw
        self._on_progress = on_progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self._on_progress is not None and data:
            self._on_progress(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        count = int(self._raw.readinto(buffer))  # type: ignore[attr-defined]
        if self._on_progress is not None and count:
            self._on_progress(count)
        return count

    def readable(self) -> bool:
        return True


def log_result(result: IngestResult, lake: Storage) -> None:
    """One structured line per file: file, status, rows, written, rejected, seconds, bytes."""
    fields: dict[str, Any] = {
        "file": result.uri,
        "status": result.status,
        "rows": result.rows_read,
        "written": result.rows_written,
        "rejected": result.rows_rejected,
        "seconds": result.seconds,
        "bytes": result.uncompressed_bytes,
    }
    if result.status == STATUS_QUARANTINED:
        fields["record"] = lake.uri(quarantine_key(result.source_id))
        log.error("quarantined %s", result.error, extra={"fields": fields})
    elif result.status == STATUS_FAILED:
        log.error("%s", result.error, extra={"fields": fields})
    elif result.status == STATUS_CHANGED:
        log.warning("%s", result.error, extra={"fields": fields})
    elif result.rows_rejected:
        assert result.rejects_key is not None
        fields["rejects"] = lake.uri(result.rejects_key)
        log.warning(
            "ingested with %d rejected row(s), e.g. %s",
            result.rows_rejected,
            result.first_reject,
            extra={"fields": fields},
        )
    else:
        log.info("ingested", extra={"fields": fields})
