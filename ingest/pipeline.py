"""`b2p ingest`: copy v4 log files from a source into the partitioned Parquet lake.

The unit of work is one source object: `ingest_object(source, key, etag, lake)` reads it,
writes its partitions and rejects, removes what an earlier version produced and this one no
longer does, and writes its ingest-log record LAST — so a log record means "complete", and a
run that dies before it leaves the object to the next run. The CLI, a process pool and a
Lambda worker (`ingest.aws_handlers`) all call that same function; `run` only plans (list
source, skip logged versions), fans out and reports. The order of writes that makes a kill or
an overlapping run harmless is described in `ingest.lake`.

The object is read pinned to the ETag it was planned with: if it was replaced in between, the
attempt stops before anything is visible (status `changed`, nothing logged) and the next run
ingests the new version.

Quarantine: a file that cannot be read at all (`UnreadableFile`, `HeaderError`) leaves nothing
of this attempt in the lake and does not touch the outputs of an earlier good version; its
reason goes to `_ingest/quarantine/<source_id>.json` and its log record has status
`quarantined`, so the same version is not retried (a re-delivery has a new ETag; pass
`--retry-quarantined` after fixing e.g. the column aliases).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ingest.cli import EXIT_FAILED, EXIT_OK, EXIT_QUARANTINED
from ingest.contract import (
    LAKE_SCHEMA,
    HeaderError,
    HeaderMapping,
    ValidatedBlock,
    load_aliases,
    map_header,
    validate_block,
)
from ingest.errors import UserError
from ingest.lake import (
    IngestLog,
    PartitionedWriter,
    RejectsWriter,
    etag_token,
    listed_outputs,
    log_key,
    new_attempt_id,
    quarantine_key,
    source_id_for,
    write_quarantine_record,
)
from ingest.logs import configure_logging
from ingest.progress import ProgressBar
from ingest.reader import BLOCK_BYTES, LogFileReader, RawBlock, UnreadableFile, is_log_file
from ingest.storage import ObjectChanged, ObjectInfo, Storage, open_storage

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
    aliases: Mapping[str, str] | None = None,
    block_bytes: int = BLOCK_BYTES,
    on_progress: ProgressCallback | None = None,
) -> IngestResult:
    """Ingest one source object version into the lake; the log record is written last.

    Raises only for unexpected problems (I/O, bugs); bad input ends as `quarantined`.
    """
    clock = time.monotonic()
    started = _utc_now()
    source_uri = source.uri(key)
    result = IngestResult(source_uri, key, etag, size, source_id_for(source_uri))
    result.started_at = _iso(started)
    ingest_log = IngestLog(lake)
    attempt = new_attempt_id()
    try:
        intent = _write_outputs(
            source, lake, ingest_log, attempt, result, aliases, block_bytes, on_progress, started
        )
    except (UnreadableFile, HeaderError) as exc:
        result.status = STATUS_QUARANTINED
        result.error = f"{source_uri}: {exc}"
        result.rows_written = result.rows_rejected = result.rows_read = 0
        result.output_keys, result.rejects_key, result.first_reject = [], None, None
        _finish(result, clock)
        write_quarantine_record(lake, result.source_id, _quarantine_record(result))
        ingest_log.write(result.log_record())
        return result
    _remove_outputs_of_other_attempts(lake, ingest_log, result, intent)
    lake.delete(quarantine_key(result.source_id))
    _finish(result, clock)
    ingest_log.write(result.log_record())
    lake.delete(intent)  # the log record now lists the same outputs
    return result


def _write_outputs(
    source: Storage,
    lake: Storage,
    ingest_log: IngestLog,
    attempt: str,
    result: IngestResult,
    aliases: Mapping[str, str] | None,
    block_bytes: int,
    on_progress: ProgressCallback | None,
    started: dt.datetime,
) -> str:
    """Read the whole object and commit its partitions and rejects, or commit nothing.

    Returns the key of the intent record written just before the commit.
    """
    ingested_at = pa.scalar(started.replace(tzinfo=None), pa.timestamp("ms"))
    with contextlib.ExitStack() as outputs:
        partitions = PartitionedWriter(lake, result.source_id, outputs)
        rejects = RejectsWriter(lake, result.source_id, outputs)
        with source.open_read(result.key, etag=result.etag) as raw:
            reader = LogFileReader(_Counting(raw, on_progress), result.key, block_bytes)
            mapping = map_header(reader.header, aliases)
            for block in reader.blocks():
                result.rows_read += block.num_rows + len(block.invalid)
                rejects.write(_malformed_rejects(block, result.uri))
                validated = validate_block(block.columns, mapping)
                failed = validated.failed_mask()
                if failed is not None:
                    rejects.write(_invalid_value_rejects(block, validated, mapping, result))
                rows = _lake_rows(validated, block, result.uri, ingested_at)
                partitions.write(rows if failed is None else rows.filter(pc.invert(failed)))
            partitions.finish()
        if result.rows_read != partitions.rows_written + rejects.count:
            # a bug, not bad input: raising here discards this attempt's outputs
            raise RuntimeError(
                f"{result.uri}: {result.rows_read} rows read but {partitions.rows_written} "
                f"written + {rejects.count} rejected"
            )
        result.uncompressed_bytes = reader.uncompressed_bytes
        result.output_keys = partitions.keys
        result.rejects_key = rejects.key
        # before anything becomes visible, so a kill during the commit leaves a record of it
        intent = ingest_log.write_intent(
            result.source_id, result.etag, attempt, listed_outputs(result.log_record())
        )
    # the ExitStack closed normally: every partition and the rejects file are now visible
    result.rows_written = partitions.rows_written
    result.rows_rejected = rejects.count
    result.first_reject = rejects.first_message
    return intent


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
        position = mapping.contract_positions[problem.column]
        raw_value = values[position][index]
        header_name = mapping.header[position]
        named = (
            problem.column
            if header_name == problem.column
            else f"{problem.column} ({header_name!r})"
        )
        yield {
            "source_file": result.uri,
            "line": line,
            "column": problem.column,
            "reason": problem.reason,
            "message": f"{result.uri} line {line}, column {named}: value {raw_value!r} "
            f"{problem.reason}; correct the value and re-deliver the file",
            "values": [column_values[index] for column_values in values],
        }


def _remove_outputs_of_other_attempts(
    lake: Storage, ingest_log: IngestLog, result: IngestResult, own_intent: str
) -> None:
    """Delete what other attempts and versions left that this one did not write, then their
    records (step 4 of the protocol in `ingest.lake`)."""
    keep = set(listed_outputs(result.log_record()))
    own_log = log_key(result.source_id, result.etag)
    for key, record in list(ingest_log.records_for(result.source_id)):
        if key in (own_log, own_intent):
            continue  # same version, same outputs: nothing of it is stale
        for stale in listed_outputs(record):
            if stale not in keep:
                lake.delete(stale)
        lake.delete(key)  # safe before our log record: our intent covers what we wrote


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


# ---------------------------------------------------------------- the `ingest` subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", required=True, help="folder (or s3://bucket/prefix) holding the v4 log files"
    )
    parser.add_argument(
        "--lake",
        default=os.environ.get("B2P_LAKE", "lake"),
        help="lake root: folder or s3://bucket/prefix (default: $B2P_LAKE or ./lake)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="files processed in parallel (default 1)"
    )
    parser.add_argument(
        "--column-aliases",
        metavar="FILE",
        help="JSON object or two-column CSV mapping other header names to contract columns",
    )
    parser.add_argument(
        "--source-role-arn",
        default=os.environ.get("B2P_SOURCE_ROLE_ARN") or None,
        help="IAM role to assume for reading an S3 source, e.g. one in FreeWheel's account "
        "(default: $B2P_SOURCE_ROLE_ARN); the lake is written with your own credentials",
    )
    parser.add_argument(
        "--source-external-id",
        default=os.environ.get("B2P_SOURCE_EXTERNAL_ID") or None,
        help="external id the source role requires (default: $B2P_SOURCE_EXTERNAL_ID)",
    )
    parser.add_argument(
        "--retry-quarantined",
        action="store_true",
        help="process quarantined versions again (e.g. after fixing --column-aliases)",
    )


@dataclass
class RunSummary:
    ingested: int = 0
    skipped: int = 0
    changed: int = 0
    quarantined: int = 0
    failed: int = 0
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    uncompressed_bytes: int = 0

    def add(self, result: IngestResult) -> None:
        if result.status == STATUS_OK:
            self.ingested += 1
        elif result.status == STATUS_QUARANTINED:
            self.quarantined += 1
        elif result.status == STATUS_CHANGED:
            self.changed += 1
        else:
            self.failed += 1
        self.rows_read += result.rows_read
        self.rows_written += result.rows_written
        self.rows_rejected += result.rows_rejected
        self.uncompressed_bytes += result.uncompressed_bytes

    def exit_status(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return EXIT_QUARANTINED if self.quarantined else EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UserError("--workers must be 1 or more")
    bound_arrow_memory()
    aliases = load_aliases(args.column_aliases) if args.column_aliases else {}
    source_access = SourceAccess(args.source, args.source_role_arn, args.source_external_id)
    source = source_access.open()
    lake = open_storage(args.lake)
    logged = IngestLog(lake).logged_versions()  # the one LIST of the log this run makes
    _sweep_leftovers_of_killed_runs(lake, logged)
    todo, skipped = plan(source, lake, retry_quarantined=args.retry_quarantined, logged=logged)
    summary = RunSummary(skipped=skipped)
    progress = ProgressBar(sum(info.size for info in todo), len(todo))
    clock = time.monotonic()
    try:
        results = _ingest_all(source_access, source, lake, todo, aliases, args.workers, progress)
        for result in results:
            summary.add(result)
            progress.clear()
            log_result(result, lake)
            progress.file_done()
    finally:
        progress.close()
        _log_summary(summary, time.monotonic() - clock)  # also when the run is cut short
    return summary.exit_status()


@dataclass(frozen=True)
class SourceAccess:
    """How to open the source: its URI and, for a cross-account S3 bucket, the role to assume.

    Plain data, so it can be handed to worker processes, which open their own clients.
    """

    uri: str
    role_arn: str | None = None
    external_id: str | None = None

    def open(self) -> Storage:
        if not self.uri.startswith("s3://"):
            if self.role_arn:
                raise UserError(
                    f"--source-role-arn applies to an s3:// source, not the folder {self.uri}"
                )
            if not os.path.isdir(self.uri):
                raise UserError(
                    f"source folder {self.uri} does not exist; pass the folder holding the "
                    "log files"
                )
            return open_storage(self.uri)
        from ingest.s3 import S3Storage  # boto3 is imported only when S3 is used

        return S3Storage.from_uri(self.uri, role_arn=self.role_arn, external_id=self.external_id)


def bound_arrow_memory() -> None:
    """Make this process's large allocations return to the OS promptly.

    Arrow's default pool here (mimalloc) keeps freed blocks, so RSS climbs with every parsed
    block; jemalloc with a decay time of 0 purges at once. The decompressed blocks themselves are
    Python bytes from glibc malloc: glibc raises its mmap threshold after the first large free,
    so later 8 MB blocks are carved from the heap and fragment it; a fixed 4 MiB threshold keeps
    them mmapped and unmapped on free (1 MiB saved as much memory but cost ~7 % speed in page
    faults). Measured on a 1 GB file, one worker (benchmarks/ingest_memory.py): 326-330 MB peak
    without the fixed threshold, 294-298 MB with it, same speed. Process-wide by nature:
    called by each entry point (CLI run, pool worker, Lambda handler), never from library code.
    """
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    _fix_glibc_mmap_threshold(4 << 20)


# mallopt's parameter number for M_MMAP_THRESHOLD (glibc malloc.h)
_M_MMAP_THRESHOLD = -3


def _fix_glibc_mmap_threshold(size: int) -> None:
    """Allocations of `size` bytes or more always use mmap (no-op off glibc)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: no mallopt
        ctypes.CDLL(library).mallopt(_M_MMAP_THRESHOLD, size)


def _sweep_leftovers_of_killed_runs(lake: Storage, logged: set[tuple[str, str]]) -> None:
    """Temp files and settled intent records a killed run left (see `ingest.lake`)."""
    temp_files = lake.sweep_temp_files()
    intents = IngestLog(lake).remove_settled_intents(logged)
    if temp_files or intents:
        log.info(
            "removed what an interrupted run left: %d temp file(s), %d intent record(s)",
            temp_files,
            intents,
            extra={"fields": {"temp_files_removed": temp_files, "intents_removed": intents}},
        )


def plan(
    source: Storage,
    lake: Storage,
    retry_quarantined: bool = False,
    logged: set[tuple[str, str]] | None = None,
) -> tuple[list[ObjectInfo], int]:
    """The source objects to ingest now, and how many were skipped as already logged
    (`logged`: the log's versions if the caller has listed them already)."""
    ingest_log = IngestLog(lake)
    if logged is None:
        logged = ingest_log.logged_versions()
    retry = ingest_log.quarantined_sources() if retry_quarantined else set()
    todo: list[ObjectInfo] = []
    skipped = 0
    for info in source.list():
        if not is_log_file(info.key):
            continue
        source_id = source_id_for(source.uri(info.key))
        if (source_id, etag_token(info.etag)) in logged and source_id not in retry:
            skipped += 1
        else:
            todo.append(info)
    return todo, skipped


def _ingest_all(
    source_access: SourceAccess,
    source: Storage,
    lake: Storage,
    todo: list[ObjectInfo],
    aliases: Mapping[str, str],
    workers: int,
    progress: ProgressBar,
) -> Iterable[IngestResult]:
    if workers == 1 or len(todo) <= 1:
        for info in todo:
            yield _ingest_safely(source, lake, info, aliases, progress.advance)
        return
    yield from _ingest_in_pools(
        source_access, source, lake.root, todo, dict(aliases), workers, progress
    )


def _ingest_in_pools(
    source_access: SourceAccess,
    source: Storage,
    lake_root: str,
    todo: list[ObjectInfo],
    aliases: dict[str, str],
    workers: int,
    progress: ProgressBar,
) -> Iterable[IngestResult]:
    """Files in worker processes, at most `workers` submitted at a time, so that when a worker
    dies (OOM kill, segfault) and takes the pool down, the files then in flight are known.

    One such file is the cause: it ends `failed` (not logged, so the next run retries it).
    Several: each runs again alone, in its own process, so only the one that dies again fails.
    The files not yet submitted go on in a new pool.
    """
    waiting = list(reversed(todo))  # popped from the end: in listing order
    while waiting:
        in_flight: dict[Future[IngestResult], ObjectInfo] = {}
        with _worker_pool(workers) as pool:
            while waiting or in_flight:
                while waiting and len(in_flight) < workers:
                    info = waiting.pop()
                    future = pool.submit(_ingest_in_worker, source_access, lake_root, info, aliases)
                    in_flight[future] = info
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    break
                for future in done:
                    info = in_flight.pop(future)
                    progress.advance(info.size)
                    yield future.result()
        if not in_flight:
            continue
        # the pool is broken: every file in flight was interrupted, finished ones excepted
        interrupted = []
        for future, info in in_flight.items():
            if future.done() and future.exception() is None:
                progress.advance(info.size)
                yield future.result()
            else:
                interrupted.append(info)
        if len(interrupted) == 1:
            progress.advance(interrupted[0].size)
            yield _worker_died(source, interrupted[0])
            continue
        isolated = [(_worker_pool(1), info) for info in interrupted]  # a death names its file
        try:
            futures = [
                (pool.submit(_ingest_in_worker, source_access, lake_root, info, aliases), info)
                for pool, info in isolated
            ]
            for future, info in futures:
                progress.advance(info.size)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    yield _worker_died(source, info)
        finally:
            for pool, _ in isolated:
                pool.shutdown(cancel_futures=True)


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    verbose = logging.getLogger().level <= logging.DEBUG
    return ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=(verbose,))


def _start_worker(verbose: bool) -> None:
    """Once per worker process: its logging and its (process-wide) memory settings."""
    configure_logging(verbose=verbose)
    bound_arrow_memory()


def _worker_died(source: Storage, info: ObjectInfo) -> IngestResult:
    uri = source.uri(info.key)
    died = IngestResult(uri, info.key, info.etag, info.size, source_id_for(uri))
    died.status = STATUS_FAILED
    died.error = (
        f"{uri}: the worker process reading it died (killed for lack of memory, or crashed); "
        "nothing was logged for it, so the next run retries it (with fewer --workers if it "
        "ran out of memory)"
    )
    return died


def _ingest_in_worker(
    source_access: SourceAccess, lake_root: str, info: ObjectInfo, aliases: dict[str, str]
) -> IngestResult:
    source, lake = worker_storages(source_access, lake_root)
    return _ingest_safely(source, lake, info, aliases, None)


@functools.lru_cache(maxsize=1)
def worker_storages(source_access: SourceAccess, lake_root: str) -> tuple[Storage, Storage]:
    """The source and lake of a worker process (a pool worker, a warm Lambda container), opened
    on its first file and reused for the rest: an S3 source costs two clients and, with a role,
    an AssumeRole (its credentials refresh themselves), which a backlog of thousands of files
    should not repeat per file. The CLI's own process never calls this, so no client is ever
    inherited across a fork."""
    return source_access.open(), open_storage(lake_root)


def _ingest_safely(
    source: Storage,
    lake: Storage,
    info: ObjectInfo,
    aliases: Mapping[str, str],
    on_progress: ProgressCallback | None,
) -> IngestResult:
    """`ingest_object`, with an unexpected error turned into a `failed` result (not logged)."""
    try:
        return ingest_object(
            source,
            info.key,
            info.etag,
            lake,
            size=info.size,
            aliases=aliases,
            on_progress=on_progress,
        )
    except ObjectChanged as exc:
        uri = source.uri(info.key)
        changed = IngestResult(uri, info.key, info.etag, info.size, source_id_for(uri))
        changed.status = STATUS_CHANGED
        changed.error = f"{exc}; nothing was written for it, the next run ingests the new version"
        return changed
    except Exception as exc:
        log.exception("failed", extra={"fields": {"file": source.uri(info.key)}})
        uri = source.uri(info.key)
        failed = IngestResult(uri, info.key, info.etag, info.size, source_id_for(uri))
        failed.status = STATUS_FAILED
        failed.error = (
            f"{uri}: unexpected {type(exc).__name__}: {exc}; nothing was logged for it, so the "
            "next run retries it"
        )
        return failed


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


def _log_summary(summary: RunSummary, seconds: float) -> None:
    megabytes = summary.uncompressed_bytes / 1e6
    fields = {
        "files_ingested": summary.ingested,
        "files_skipped": summary.skipped,
        "files_changed": summary.changed,
        "files_quarantined": summary.quarantined,
        "files_failed": summary.failed,
        "rows_read": summary.rows_read,
        "rows_written": summary.rows_written,
        "rows_rejected": summary.rows_rejected,
        "mb_uncompressed": round(megabytes, 1),
        "mb_per_second": round(megabytes / seconds, 1) if seconds > 0 else None,
        "seconds": round(seconds, 2),
    }
    message = (
        f"done: {summary.ingested} file(s) ingested, {summary.skipped} already ingested, "
        f"{summary.changed} changed while listed, {summary.quarantined} quarantined, "
        f"{summary.failed} failed; rows "
        f"{summary.rows_read} read = {summary.rows_written} written + "
        f"{summary.rows_rejected} rejected"
    )
    if summary.quarantined:
        message += "; see _ingest/quarantine/ in the lake for what to fix"
    log.info(message, extra={"fields": fields})
