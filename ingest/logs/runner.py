"""Running attempts: the plan (what to ingest now), and the fan-out over files.

`plan` lists the source and drops versions already settled in the ingest log. `ingest_all` runs
the attempts (`ingest.logs.attempt.ingest_object`) in this process, or in a pool of worker
processes that survives a worker dying. The Lambda fan-out (`ingest.aws_lambda`) uses `plan` and
`worker_storages` too.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from ingest.errors import UserError
from ingest.logs.attempt import (
    STATUS_CHANGED,
    STATUS_FAILED,
    IngestResult,
    ProgressCallback,
    ingest_object,
    refused,
)
from ingest.logs.contract import FeedMapping
from ingest.logs.lake import IngestLog, VersionCommit, etag_token, is_settled, source_id_for
from ingest.logs.reader import is_log_file
from ingest.logs.records import RecordLimits
from ingest.logs.runtime import bound_arrow_memory
from ingest.storage import ObjectChanged, ObjectInfo, Storage, is_s3_uri, open_storage
from ingest.structured_logging import configure_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceAccess:
    """How to open the source: its URI and, for a cross-account S3 bucket, the role to assume.

    Plain data, so it can be handed to worker processes, which open their own clients.
    """

    uri: str
    role_arn: str | None = None
    external_id: str | None = None

    def open(self) -> Storage:
        if not is_s3_uri(self.uri) and self.role_arn:
            raise UserError(
                f"--source-role-arn applies to an s3:// source, not the folder {self.uri}"
            )
        return open_storage(self.uri, role_arn=self.role_arn, external_id=self.external_id)


def add_source_access_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `SourceAccess` (b2p ingest, b2p inspect)."""
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


def plan(
    source: Storage,
    lake: Storage,
    retry_quarantined: bool = False,
    logged: set[tuple[str, str]] | None = None,
) -> tuple[list[ObjectInfo], int]:
    """The source objects to ingest now, and how many were skipped as settled (`logged`: the
    log's versions if the caller has listed them already)."""
    ingest_log = IngestLog(lake)
    if logged is None:
        logged = ingest_log.logged_versions()
    quarantined = ingest_log.quarantined_sources() if retry_quarantined else set()
    todo: list[ObjectInfo] = []
    skipped = 0
    for info in source.list():
        if not is_log_file(info.key):
            continue
        source_id = source_id_for(source.uri(info.key))
        version_logged = (source_id, etag_token(info.etag)) in logged
        if is_settled(version_logged, source_id in quarantined, retry_quarantined):
            skipped += 1
        else:
            todo.append(info)
    return todo, skipped


OnFileRead = Callable[[int], None]


@dataclass(frozen=True)
class ReadSettings:
    """How every file of a run is read: the feed's mapping file, the record limits and the
    threads per file (plain data, handed to worker processes)."""

    feed: FeedMapping = field(default_factory=FeedMapping)
    limits: RecordLimits = field(default_factory=RecordLimits)
    threads: int = 1


def ingest_all(
    source_access: SourceAccess,
    source: Storage,
    lake: Storage,
    todo: list[ObjectInfo],
    settings: ReadSettings,
    workers: int,
    on_progress: OnFileRead,
) -> Iterable[IngestResult]:
    """Every planned file's result, in this process (`workers` 1) or in a pool of processes.

    `on_progress(bytes)` is told how much of the (compressed) input has been read.
    """
    if workers == 1 or len(todo) <= 1:
        for info in todo:
            yield ingest_safely(source, lake, info, settings, on_progress)
        return
    yield from _ingest_in_pools(source_access, source, lake, todo, settings, workers, on_progress)


def _ingest_in_pools(
    source_access: SourceAccess,
    source: Storage,
    lake: Storage,
    todo: list[ObjectInfo],
    settings: ReadSettings,
    workers: int,
    on_progress: OnFileRead,
) -> Iterable[IngestResult]:
    """Files in worker processes, at most `workers` submitted at a time, so that when a worker
    dies (OOM kill, segfault) and takes the pool down, the files then in flight are known.

    One such file is the cause: it ends `failed` (not logged, so the next run retries it; a
    second death in a row quarantines it). Several: each runs again alone, in its own process,
    so only the one that dies again fails. The files not yet submitted go on in a new pool.
    """
    lake_root = lake.root
    waiting = list(reversed(todo))  # popped from the end: in listing order
    while waiting:
        in_flight: dict[Future[IngestResult], ObjectInfo] = {}
        with _worker_pool(workers) as pool:
            while waiting or in_flight:
                while waiting and len(in_flight) < workers:
                    info = waiting.pop()
                    arguments = (source_access, lake_root, info, settings)
                    in_flight[pool.submit(_ingest_in_worker, *arguments)] = info
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    break
                for future in done:
                    info = in_flight.pop(future)
                    on_progress(info.size)
                    yield future.result()
        if not in_flight:
            continue
        # the pool is broken: every file in flight was interrupted, finished ones excepted
        interrupted = []
        for future, info in in_flight.items():
            if future.done() and future.exception() is None:
                on_progress(info.size)
                yield future.result()
            else:
                interrupted.append(info)
        if len(interrupted) == 1:
            on_progress(interrupted[0].size)
            yield _worker_died(source, lake, interrupted[0])
            continue
        isolated = [(_worker_pool(1), info) for info in interrupted]  # a death names its file
        try:
            futures = [
                (pool.submit(_ingest_in_worker, source_access, lake_root, info, settings), info)
                for pool, info in isolated
            ]
            for future, info in futures:
                on_progress(info.size)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    yield _worker_died(source, lake, info)
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


def _worker_died(source: Storage, lake: Storage, info: ObjectInfo) -> IngestResult:
    problem = (
        f"{source.uri(info.key)}: the worker process reading it died (killed for lack of "
        "memory, or crashed)"
    )
    result = IngestResult.unfinished(source, info.key, info.etag, info.size, STATUS_FAILED, "")
    try:
        return refused(
            result,
            VersionCommit(lake, result.source_id, info.etag),
            time.monotonic(),
            problem,
            "run with fewer --workers if it ran out of memory",
        )
    except Exception:  # the lake cannot record it: still one failed file, retried
        log.debug("could not record the failure", exc_info=True)
        result.error = f"{problem}; nothing was logged for it, so the next run retries it"
        return result


def _ingest_in_worker(
    source_access: SourceAccess, lake_root: str, info: ObjectInfo, settings: ReadSettings
) -> IngestResult:
    source, lake = worker_storages(source_access, lake_root)
    return ingest_safely(source, lake, info, settings, None)


@functools.lru_cache(maxsize=1)
def worker_storages(source_access: SourceAccess, lake_root: str) -> tuple[Storage, Storage]:
    """The source and lake of a worker process (a pool worker, a warm Lambda container), opened
    on its first file and reused for the rest: an S3 source costs two clients and, with a role,
    an AssumeRole (its credentials refresh themselves), which a backlog of thousands of files
    should not repeat per file. The CLI's own process never calls this, so no client is ever
    inherited across a fork."""
    return source_access.open(), open_storage(lake_root)


def ingest_safely(
    source: Storage,
    lake: Storage,
    info: ObjectInfo,
    settings: ReadSettings,
    on_progress: ProgressCallback | None,
) -> IngestResult:
    """`ingest_object`, with an unexpected error turned into a `failed` result (not logged):
    one line naming the file, the traceback only at debug level (`b2p -v`)."""
    try:
        return ingest_object(
            source,
            info.key,
            info.etag,
            lake,
            size=info.size,
            aliases=settings.feed,
            limits=settings.limits,
            threads=settings.threads,
            on_progress=on_progress,
        )
    except ObjectChanged as exc:
        return IngestResult.unfinished(
            source,
            info.key,
            info.etag,
            info.size,
            STATUS_CHANGED,
            f"{exc}; nothing was written for it, the next run ingests the new version",
        )
    except Exception as exc:
        log.debug("failed", exc_info=True, extra={"fields": {"file": source.uri(info.key)}})
        return IngestResult.unfinished(
            source,
            info.key,
            info.etag,
            info.size,
            STATUS_FAILED,
            f"{source.uri(info.key)}: unexpected {type(exc).__name__}: {exc}; nothing was "
            "logged for it, so the next run retries it (b2p -v ingest … shows the traceback)",
        )
