"""One attempt: one source object version read, validated and committed into the lake.

`ingest_object(source, key, etag, lake)` reads the object pinned to the ETag it was planned with,
turns its records into typed lake rows and rejects, and hands them to the lake's commit protocol
(`ingest.logs.lake.VersionCommit`): nothing is visible until the whole object was read, and the
ingest-log record is written last, so a log record means "complete" and a run that dies before it
leaves the object to the next run. The CLI, its worker processes and the Lambda worker all call
this one function (`ingest.logs.runner`, `ingest.aws_lambda`).

If the object was replaced after it was listed, the read stops before anything is visible
(`ObjectChanged`, nothing logged) and the next run ingests the new version.

Quarantine: a file that cannot be read at all (`UnreadableFile`, `HeaderError`, a dangling
link) leaves nothing of this attempt in the lake and does not touch the outputs of an earlier
good version; its reason goes to `_ingest/quarantine/<source_id>.json` and its log record has
status `quarantined`, so the same version is not retried (a re-delivery has a new ETag; pass
`--retry-quarantined` after fixing e.g. the column aliases). So is a file that was read but
not understood: all its rows rejected, or more than the feed's `max_rejected_share`
(`ingest.logs.verdict`, the last step of the read). A read refused for lack of permission may be
fixed by someone else, so it is `failed` (retried) the first time; when the same version is
refused again on its next attempt (`PERSISTENT_AFTER` in a row, counted in `_ingest/failures/`),
it is quarantined too. So no file is retried forever.

Counts: `rows_*` count records as the file holds them (a record over three lines is one row);
`lines_*` count physical lines, and for every ingested file
`lines_read = header_lines + lines_written + lines_rejected + lines_skipped` (blank lines and
repeated header lines are skipped). A quarantined file is accounted for whole by its
quarantine record.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.logs.contract import (
    FeedMapping,
    HeaderError,
    HeaderMapping,
    as_feed_mapping,
    map_header,
)
from ingest.logs.lake import StagedOutputs, VersionCommit, quarantine_key, source_id_for
from ingest.logs.reader import BLOCK_BYTES, LogFileReader, RawBlock, UnreadableFile
from ingest.logs.records import RecordLimits
from ingest.logs.values import ValidatedBlock, validate_block
from ingest.logs.verdict import NotUnderstood, RejectTally, mapping_name, not_understood
from ingest.logs.writers import WRITTEN_SCHEMA
from ingest.storage import AccessDenied, BrokenLink, Storage

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_QUARANTINED = "quarantined"
STATUS_FAILED = "failed"  # an unexpected error (I/O, bug): not logged, retried by the next run
STATUS_CHANGED = "changed"  # replaced after it was listed: not logged, the next run takes it
PERSISTENT_AFTER = 2  # attempts in a row refused the same way before the version is quarantined


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
    lines_read: int = 0  # physical lines of the file, header included
    header_lines: int = 0
    lines_written: int = 0
    lines_rejected: int = 0
    lines_skipped: int = 0  # blank lines and repeated header lines
    repeated_headers: int = 0
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

    def clear_counts(self) -> None:
        """Nothing of the attempt counts (it was quarantined: the record covers the file)."""
        for name in (
            "rows_read",
            "rows_written",
            "rows_rejected",
            "lines_read",
            "header_lines",
            "lines_written",
            "lines_rejected",
            "lines_skipped",
            "repeated_headers",
        ):
            setattr(self, name, 0)
        self.output_keys, self.rejects_key, self.first_reject = [], None, None


ProgressCallback = Callable[[int], None]


def ingest_object(
    source: Storage,
    key: str,
    etag: str,
    lake: Storage,
    *,
    size: int | None = None,
    aliases: FeedMapping | Mapping[str, str] | None = None,
    limits: RecordLimits | None = None,
    block_bytes: int = BLOCK_BYTES,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
) -> IngestResult:
    """Ingest one source object version into the lake; the log record is written last.

    `aliases` is the feed's mapping file (`--column-aliases`), or plain aliases; `threads`
    parse and validate the file's blocks (`LogFileReader.map_blocks`: the same result for any
    number).

    Raises only for unexpected problems (I/O, bugs, `ObjectChanged`); bad input ends as
    `quarantined`, a refused read as `failed` and then `quarantined`.
    """
    clock = time.monotonic()
    started = _utc_now()
    source_uri = source.uri(key)
    result = IngestResult(source_uri, key, etag, size, source_id_for(source_uri))
    result.started_at = _iso(started)
    commit = VersionCommit(lake, result.source_id, etag)
    reading = _Reading(
        as_feed_mapping(aliases), limits or RecordLimits(), block_bytes, threads, on_progress
    )
    try:
        with commit.staged() as outputs:
            _read_into(source, outputs, result, reading, started)
    except (UnreadableFile, HeaderError, NotUnderstood) as exc:
        return _quarantined(result, commit, clock, f"{source_uri}: {exc}")
    except BrokenLink as exc:
        return _quarantined(
            result, commit, clock, f"{exc}; fix or remove the link (a changed link is read again)"
        )
    except AccessDenied as exc:
        return refused(result, commit, clock, str(exc), _ACCESS_ADVICE)
    _finish(result, clock)
    commit.complete(result.log_record())
    return result


_ACCESS_ADVICE = (
    "give the reader access (a local file: its permissions; S3: s3:GetObject, and kms:Decrypt "
    "for a KMS-encrypted object, for the credentials or role in use)"
)


def refused(
    result: IngestResult, commit: VersionCommit, clock: float, problem: str, advice: str
) -> IngestResult:
    """An attempt that failed in a way someone may fix: `failed` (retried by the next run) the
    first time, `quarantined` when the same version fails so `PERSISTENT_AFTER` times in a row."""
    record = commit.count_failure(problem, _iso(_utc_now()))
    if record["attempts"] >= PERSISTENT_AFTER:
        reason = (
            f"{problem}, on {record['attempts']} attempts in a row since "
            f"{record['first_failed_at']}; {advice}, then run with --retry-quarantined"
        )
        return _quarantined(result, commit, clock, reason)
    result.clear_counts()
    result.status = STATUS_FAILED
    result.error = (
        f"{problem}; nothing was logged for it, so the next run retries it, and quarantines it "
        f"if it fails so again: {advice}"
    )
    _finish(result, clock)
    return result


def _quarantined(
    result: IngestResult, commit: VersionCommit, clock: float, reason: str
) -> IngestResult:
    result.status = STATUS_QUARANTINED
    result.error = reason
    result.clear_counts()
    _finish(result, clock)
    commit.quarantine(result.log_record(), _quarantine_record(result))
    return result


@dataclass(frozen=True)
class _Reading:
    """How to read a file: the feed's mapping, record limits, block size, threads, progress
    callback."""

    feed: FeedMapping
    limits: RecordLimits
    block_bytes: int
    threads: int
    on_progress: ProgressCallback | None


def _read_into(
    source: Storage,
    outputs: StagedOutputs,
    result: IngestResult,
    reading: _Reading,
    started: dt.datetime,
) -> None:
    """Read the whole object into the staged partitions and rejects, counting every record
    and every line."""
    ingested_at = pa.scalar(started.replace(tzinfo=None), pa.timestamp("ms"))
    partitions, rejects = outputs.partitions, outputs.rejects
    with source.open_read(result.key, etag=result.etag) as raw:
        stream = _Counting(raw, reading.on_progress)
        reader = LogFileReader(stream, result.key, reading.block_bytes, reading.limits)
        mapping = map_header(reader.header, reading.feed)
        tally = RejectTally(mapping)

        def work(block: RawBlock) -> _BlockOutcome:  # on the reader's threads
            return _block_outcome(block, mapping, result.uri, ingested_at)

        # contract columns hold ids, names, times and numbers: only the others hold line breaks
        breaks = mapping.extra_positions.values()
        for outcome in reader.map_blocks(work, breaks, reading.threads):
            result.rows_read += outcome.rows_read
            result.lines_written += outcome.lines_written
            result.lines_rejected += outcome.lines_rejected
            result.lines_skipped += outcome.lines_skipped
            result.repeated_headers += outcome.repeated_headers
            rejects.write(tally.observe(outcome.rejects))
            partitions.write(outcome.rows)
    partitions.finish()
    result.lines_read, result.header_lines = reader.lines_read, reader.header_lines
    _check_counts(result, partitions.rows_written, rejects.count)
    _check_understood(result.rows_read, tally, reading.feed, source.root)
    result.uncompressed_bytes = reader.uncompressed_bytes
    result.output_keys = partitions.keys
    result.rejects_key = rejects.key
    result.rows_written = partitions.rows_written
    result.rows_rejected = rejects.count
    result.first_reject = rejects.first_message


@dataclass(frozen=True)
class _BlockOutcome:
    """What one parsed block adds to the attempt: its lake rows, its rejects, its counts."""

    rows: pa.Table  # the rows that passed, WRITTEN_SCHEMA
    rejects: list[dict[str, Any]]  # in line order
    rows_read: int
    lines_written: int
    lines_rejected: int
    lines_skipped: int
    repeated_headers: int


def _block_outcome(
    block: RawBlock, mapping: HeaderMapping, source_uri: str, ingested_at: pa.Scalar
) -> _BlockOutcome:
    """Validate one block and shape its rows for the lake (independent of every other block,
    so the reader runs it on several threads)."""
    rejects = list(_malformed_rejects(block, source_uri))
    validated = validate_block(block.columns, mapping)
    failed = validated.failed_mask()
    failed_lines = 0
    if failed is not None:
        rejects.extend(_invalid_value_rejects(block, validated, mapping, source_uri))
        failed_lines = block.row_lines(failed)
    rows = _lake_rows(validated, block, source_uri, ingested_at)
    # in line order, so that the rejects file is the same whatever the block size
    rejects.sort(key=lambda reject: reject["line"])
    return _BlockOutcome(
        rows if failed is None else rows.filter(pc.invert(failed)),
        rejects,
        rows_read=block.num_rows + len(block.invalid),
        lines_written=block.row_lines() - failed_lines,
        lines_rejected=sum(record.lines for record in block.invalid) + failed_lines,
        lines_skipped=block.skipped_lines,
        repeated_headers=block.repeated_headers,
    )


def _check_counts(result: IngestResult, written: int, rejected: int) -> None:
    """Every record and every line accounted for; a mismatch is a bug, not bad input: raising
    here discards this attempt's outputs."""
    if result.rows_read != written + rejected:
        raise RuntimeError(
            f"{result.uri}: {result.rows_read} rows read but {written} written + {rejected} "
            "rejected"
        )
    accounted = (
        result.header_lines + result.lines_written + result.lines_rejected + result.lines_skipped
    )
    if result.lines_read != accounted:
        raise RuntimeError(
            f"{result.uri}: {result.lines_read} lines read but {accounted} accounted for "
            f"({result.header_lines} header, {result.lines_written} written, "
            f"{result.lines_rejected} rejected, {result.lines_skipped} skipped)"
        )


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
    columns["source_file"] = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, np.int32)), pa.array([source_uri], pa.string())
    )
    columns["source_line"] = block.lines
    columns["ingested_at"] = pa.repeat(ingested_at, rows)
    # in the written order; the writer casts what is not of WRITTEN_SCHEMA's types yet
    return pa.table({field.name: columns[field.name] for field in WRITTEN_SCHEMA})


def _malformed_rejects(block: RawBlock, source_uri: str) -> Iterable[dict[str, Any]]:
    for record in block.invalid:
        reject = {
            "source_file": source_uri,
            "line": record.line,
            "lines": record.lines,
            "column": None,
            "reason": record.reason,
            "message": f"{source_uri} line {record.line}: the record {record.reason}; fix it "
            "and re-deliver the file",
            "values": record.values,
        }
        if record.excerpt is not None:
            reject["excerpt"] = record.excerpt
        yield reject


def _invalid_value_rejects(
    block: RawBlock, validated: ValidatedBlock, mapping: HeaderMapping, source_uri: str
) -> Iterable[dict[str, Any]]:
    first_problem: dict[int, Any] = {}
    for problem in validated.problems:
        for row in pc.indices_nonzero(problem.mask).to_pylist():
            first_problem.setdefault(row, problem)
    rows = np.array(sorted(first_problem), dtype=np.int64)
    lines = _rows_of(block.lines, rows)
    spans = [1] * len(rows) if block.spans is None else _rows_of(block.spans, rows)
    values = [_rows_of(column, rows) for column in block.columns]
    for index, (row, line) in enumerate(zip(rows.tolist(), lines, strict=True)):
        problem = first_problem[row]
        # a key built from several columns shows each part: 'preroll' + ''
        shown = " + ".join(
            repr(values[position][index]) for position in mapping.positions_of(problem.column)
        )
        named = mapping_name(mapping, problem.column)
        yield {
            "source_file": source_uri,
            "line": line,
            "lines": spans[index],
            "column": problem.column,
            "reason": problem.reason,
            "message": f"{source_uri} line {line}, column {named}: value {shown} "
            f"{problem.reason}; correct the value and re-deliver the file",
            "values": [column_values[index] for column_values in values],
        }


def _rows_of(values: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> list[Any]:
    """The values at `rows` (ascending) as Python objects, taken chunk by chunk: a `take` on
    a chunked string column would first copy the whole column into one chunk."""
    if isinstance(values, pa.Array):
        return values.take(pa.array(rows)).to_pylist()
    taken: list[Any] = []
    start = 0
    for chunk in values.chunks:
        end = start + len(chunk)
        low, high = np.searchsorted(rows, [start, end])
        if high > low:
            taken.extend(chunk.take(pa.array(rows[low:high] - start)).to_pylist())
        start = end
    return taken


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
        "lines": result.lines_read,
        "lines_skipped": result.lines_skipped,
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
