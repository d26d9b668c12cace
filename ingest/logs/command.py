"""`b2p ingest`: copy v4 log files from a source into the partitioned Parquet lake.

The command checks its arguments and, before it touches anything, that the source can be listed
and the lake written (exit 1 with one message otherwise); then it sweeps what killed runs left,
plans (`ingest.logs.runner.plan`), runs the attempts and reports: one line per file and a
summary. The exit status is 0 when every file was ingested or skipped, 2 when some were
quarantined, 1 when some failed (`ingest.errors`).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass, replace

from ingest.errors import EXIT_FAILED, EXIT_OK, EXIT_QUARANTINED, UserError
from ingest.logs.attempt import (
    STATUS_CHANGED,
    STATUS_OK,
    STATUS_QUARANTINED,
    IngestResult,
    log_result,
)
from ingest.logs.contract import FeedMapping, load_aliases
from ingest.logs.lake import PROBE_KEY, IngestLog
from ingest.logs.progress import ProgressBar
from ingest.logs.reader import MAX_DEFAULT_THREADS, THREADS_VARIABLE, default_threads
from ingest.logs.records import (
    DEFAULT_MAX_FIELD_BYTES,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_RECORD_LINES,
    RecordLimits,
)
from ingest.logs.runner import (
    ReadSettings,
    SourceAccess,
    add_source_access_arguments,
    ingest_all,
    plan,
)
from ingest.logs.runtime import bound_arrow_memory
from ingest.storage import Storage, open_storage

log = logging.getLogger(__name__)


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
        "--threads",
        type=_positive,
        metavar="N",
        # a string default goes through `type` when the command runs: a bad value in the
        # environment is a usage error of `b2p ingest`, not a traceback of every command
        default=os.environ.get(THREADS_VARIABLE, "").strip() or None,
        help="threads parsing and validating each file's blocks, beside the one that reads "
        f"and writes it; the output is the same for any number (default: ${THREADS_VARIABLE}, "
        f"or the cores divided by --workers, 1 to {MAX_DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--column-aliases",
        metavar="FILE",
        help="the feed's mapping file: a JSON object or two-column CSV mapping other header "
        "names to contract columns (`b2p inspect --write-aliases` writes one)",
    )
    parser.add_argument(
        "--max-rejected-share",
        type=float,
        metavar="SHARE",
        help="quarantine a file when more than this share of its rows (0-1) is rejected; a file "
        "with every row rejected always is (default 0.1, or the mapping file's)",
    )
    add_source_access_arguments(parser)
    parser.add_argument(
        "--retry-quarantined",
        action="store_true",
        help="process quarantined versions again (e.g. after fixing --column-aliases)",
    )
    limits = parser.add_argument_group(
        "record limits", "larger records are rejected (with their line), never held in memory"
    )
    limits.add_argument(
        "--max-record-bytes",
        type=_positive,
        metavar="N",
        help=f"bytes of one record, line breaks included (default {DEFAULT_MAX_RECORD_BYTES:,})",
    )
    limits.add_argument(
        "--max-field-bytes",
        type=_positive,
        metavar="N",
        help=f"bytes of one value (default {DEFAULT_MAX_FIELD_BYTES:,}, or the record limit "
        "when that is smaller)",
    )
    limits.add_argument(
        "--max-record-lines",
        type=_positive,
        metavar="N",
        help="physical lines one record may take through quoted line breaks "
        f"(default {DEFAULT_MAX_RECORD_LINES})",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return value


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
    lines_skipped: int = 0
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
        self.lines_skipped += result.lines_skipped
        self.uncompressed_bytes += result.uncompressed_bytes

    def exit_status(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return EXIT_QUARANTINED if self.quarantined else EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UserError:
        raise  # printed by the CLI as it is
    except Exception as exc:
        # not expected (a bug, a lake failing mid-run): one line at the default level, the
        # traceback for whoever asks
        log.debug("unexpected error", exc_info=True)
        name = type(exc).__name__
        log.error("unexpected %s: %s (b2p -v ingest … shows the traceback)", name, exc)
        return EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UserError("--workers must be 1 or more")
    try:
        limits = RecordLimits.given(
            args.max_record_bytes, args.max_field_bytes, args.max_record_lines
        )
    except ValueError as exc:
        raise UserError(f"--max-field-bytes / --max-record-bytes: {exc}") from None
    bound_arrow_memory()
    aliases = load_aliases(args.column_aliases) if args.column_aliases else FeedMapping()
    if args.max_rejected_share is not None:
        if not 0 <= args.max_rejected_share <= 1:
            raise UserError("--max-rejected-share must be between 0 and 1")
        aliases = replace(aliases, max_rejected_share=args.max_rejected_share)
    source_access = SourceAccess(args.source, args.source_role_arn, args.source_external_id)
    source = source_access.open()
    source.check_listable("--source")
    lake = open_storage(args.lake)
    lake.check_writable("--lake", PROBE_KEY)
    logged = IngestLog(lake).logged_versions()  # the one LIST of the log this run makes
    _sweep_leftovers_of_killed_runs(lake, logged)
    todo, skipped = plan(source, lake, retry_quarantined=args.retry_quarantined, logged=logged)
    summary = RunSummary(skipped=skipped)
    clock = time.monotonic()
    try:
        with ProgressBar(sum(info.size for info in todo), len(todo)) as progress:
            results = ingest_all(
                source_access,
                source,
                lake,
                todo,
                ReadSettings(aliases, limits, args.threads or default_threads(args.workers)),
                args.workers,
                progress.advance,
            )
            for result in results:
                summary.add(result)
                log_result(result, lake)  # printed above the bar
                progress.file_done()
    finally:
        _log_summary(summary, time.monotonic() - clock)  # also when the run is cut short
    return summary.exit_status()


def _sweep_leftovers_of_killed_runs(lake: Storage, logged: set[tuple[str, str]]) -> None:
    """Temp files and settled intent records a killed run left (see `ingest.logs.lake`)."""
    temp_files = lake.sweep_temp_files()
    intents = IngestLog(lake).remove_settled_intents(logged)
    if temp_files or intents:
        log.info(
            "removed what an interrupted run left: %d temp file(s), %d intent record(s)",
            temp_files,
            intents,
            extra={"fields": {"temp_files_removed": temp_files, "intents_removed": intents}},
        )


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
        "lines_skipped": summary.lines_skipped,
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
    if summary.lines_skipped:
        message += f", {summary.lines_skipped} line(s) skipped (blank, repeated headers)"
    if summary.quarantined:
        message += "; see _ingest/quarantine/ in the lake for what to fix"
    log.info(message, extra={"fields": fields})
