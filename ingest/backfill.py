"""b2p backfill: build history on Athena in bounded chunks, one `dbt build` per chunk.

A first build over a real lake is one query per model over every day: it meets the workgroup's
bytes-scanned cutoff, Athena's 30-minute DML limit and its 100 partitions written per statement.
This command walks [start, end) in chunks of consecutive days, each rebuilt by

    dbt build <dbt arguments> --vars '{window_start: <chunk start>, window_end: <chunk end>}'

A chunk holds at most --max-days days (default 90: every statement writes at most that many
event_date partitions, under Athena's 100) and the lake's Parquet bytes of its days plus the day
before and the day after (what its statements read: the orphan check looks one day back, the
slots one day ahead) stay under --max-bytes (default: the dbt workgroup's
BytesScannedCutoffPerQuery). Parquet file sizes bound the bytes a statement scans, since it reads
only some columns of those files.

Before anything runs it checks that the Glue table's partition projection covers the oldest day
in the lake: days before `projection.event_date.range` are invisible to Athena (silently, no
error), so that is refused with the days named. A failed chunk stops the walk; rerun with --start
at that chunk (chunks before it are complete).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.errors import UserError
from ingest.storage import open_storage

log = logging.getLogger(__name__)

MAX_PARTITIONS_PER_STATEMENT = 100  # Athena: partitions one CTAS or INSERT INTO may write
DEFAULT_MAX_DAYS = 90
DEFAULT_DBT_ARGS = ("build", "--target", "athena", "--exclude-resource-type", "unit_test")
_DAY = re.compile(r"(?:^|/)v4_events/event_date=(\d{4}-\d{2}-\d{2})/")


@dataclass(frozen=True)
class Chunk:
    start: dt.date
    end: dt.date  # exclusive
    read_bytes: int  # Parquet bytes of [start - 1 day, end + 1 day)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def dbt_vars(self) -> str:
        return json.dumps(
            {"window_start": self.start.isoformat(), "window_end": self.end.isoformat()}
        )


def day_sizes(keys_and_sizes: Iterable[tuple[str, int]]) -> dict[dt.date, int]:
    """Parquet bytes per event_date of the lake's v4_events/ objects."""
    sizes: dict[dt.date, int] = {}
    for key, size in keys_and_sizes:
        found = _DAY.search(key)
        if found:
            day = dt.date.fromisoformat(found[1])
            sizes[day] = sizes.get(day, 0) + size
    return sizes


def plan_chunks(
    sizes: Mapping[dt.date, int],
    start: dt.date,
    end: dt.date,
    *,
    max_days: int = DEFAULT_MAX_DAYS,
    max_bytes: int,
) -> list[Chunk]:
    """Consecutive chunks covering [start, end), each within max_days and max_bytes."""
    if not start < end:
        raise UserError(f"--start {start} must be before --end {end}")
    if not 1 <= max_days < MAX_PARTITIONS_PER_STATEMENT:
        raise UserError(f"--max-days must be 1..{MAX_PARTITIONS_PER_STATEMENT - 1}, not {max_days}")

    def read(a: dt.date, b: dt.date) -> int:
        day, total = a - dt.timedelta(days=1), 0
        while day <= b:  # the day before a, through the day after the last day (b - 1 + 1)
            total += sizes.get(day, 0)
            day += dt.timedelta(days=1)
        return total

    chunks: list[Chunk] = []
    chunk_start = start
    while chunk_start < end:
        chunk_end = chunk_start + dt.timedelta(days=1)
        if read(chunk_start, chunk_end) > max_bytes:
            raise UserError(
                f"{chunk_start} alone reads {read(chunk_start, chunk_end)} bytes (with the days "
                f"around it), more than --max-bytes {max_bytes}: raise the workgroup's "
                "BytesScannedCutoffPerQuery for this backfill"
            )
        while (
            chunk_end < end
            and (chunk_end - chunk_start).days < max_days
            and read(chunk_start, chunk_end + dt.timedelta(days=1)) <= max_bytes
        ):
            chunk_end += dt.timedelta(days=1)
        chunks.append(Chunk(chunk_start, chunk_end, read(chunk_start, chunk_end)))
        chunk_start = chunk_end
    return chunks


def projection_start(table_parameters: Mapping[str, str]) -> dt.date | None:
    text = table_parameters.get("projection.event_date.range", "")
    first = text.split(",")[0].strip()
    return dt.date.fromisoformat(first) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", first) else None


def check_projection(days: Iterable[dt.date], first_projected: dt.date | None) -> None:
    if first_projected is None:
        return
    hidden = sorted(d for d in days if d < first_projected)
    if hidden:
        raise UserError(
            f"the lake has v4_events for {len(hidden)} day(s) before the partition projection's "
            f"first day {first_projected} ({hidden[0]} .. {hidden[-1]}): Athena does not see them. "
            f"Set the stack's ProjectionStartDate to {hidden[0]} or earlier, then backfill"
        )


# ---------------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", required=True, help="first event_date to build (YYYY-MM-DD)")
    parser.add_argument("--end", required=True, help="first event_date NOT built (YYYY-MM-DD)")
    parser.add_argument(
        "--lake", default=os.environ.get("B2P_LAKE"), help="s3://bucket (default $B2P_LAKE)"
    )
    parser.add_argument(
        "--max-days",
        type=int,
        default=DEFAULT_MAX_DAYS,
        help="days per chunk (default %(default)s, < 100)",
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        help="Parquet bytes a chunk may read (default: the workgroup's BytesScannedCutoffPerQuery)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the chunks, run nothing")
    parser.add_argument("dbt_args", nargs=argparse.REMAINDER, help="after --: dbt's arguments")


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"{option} {text!r} is not a date; use YYYY-MM-DD") from exc


def _client(service: str) -> Any:
    """A client of the dbt target's region with the project's retry policy (boto3 is imported
    only when the command runs)."""
    from ingest.storage import aws

    region = os.environ.get("B2P_ATHENA_REGION", "eu-west-1")  # profiles.yml.example's default
    return aws.caller_session().client(service, region_name=region, config=aws.client_config())


def _workgroup_cutoff() -> int:
    workgroup = os.environ.get("B2P_ATHENA_WORKGROUP", "primary")
    athena = _client("athena")
    configuration = athena.get_work_group(WorkGroup=workgroup)["WorkGroup"]["Configuration"]
    cutoff = configuration.get("BytesScannedCutoffPerQuery")
    if not cutoff:
        raise UserError(
            f"workgroup {workgroup} has no BytesScannedCutoffPerQuery: pass --max-bytes"
        )
    return int(cutoff)


def _lake_days(lake: str) -> dict[dt.date, int]:
    """Parquet bytes per day under <lake>/v4_events/ (listed with that prefix, which is what the
    dbt task's role may list)."""
    objects = open_storage(lake).list("v4_events/")
    return day_sizes((info.key, info.size) for info in objects)


def _projection_start() -> dt.date | None:
    glue = _client("glue")
    database = os.environ.get("B2P_LAKE_GLUE_DATABASE", "bones2peaches_lake")
    table = glue.get_table(DatabaseName=database, Name="v4_events")["Table"]
    return projection_start(table.get("Parameters", {}))


def _dbt() -> str:
    sibling = os.path.join(os.path.dirname(sys.executable), "dbt")
    found = sibling if os.path.exists(sibling) else shutil.which("dbt")
    if not found:
        raise UserError("dbt is not installed next to b2p or on PATH")
    return found


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _run(args)
    except (BotoCoreError, ClientError) as exc:
        raise UserError(f"backfill could not read the lake or the catalog: {exc}") from exc


def _run(args: argparse.Namespace) -> int:
    start, end = _date(args.start, "--start"), _date(args.end, "--end")
    if not args.lake or not str(args.lake).startswith("s3://"):
        raise UserError("--lake (or $B2P_LAKE) must be the lake's s3:// URI")
    sizes = _lake_days(args.lake)
    check_projection(sizes, _projection_start())
    max_bytes = args.max_bytes or _workgroup_cutoff()
    chunks = plan_chunks(sizes, start, end, max_days=args.max_days, max_bytes=max_bytes)
    given = args.dbt_args[1:] if args.dbt_args[:1] == ["--"] else args.dbt_args
    dbt_args = list(given) or list(DEFAULT_DBT_ARGS)
    for chunk in chunks:
        days = f"{chunk.start} .. {chunk.end} (end excluded): {chunk.days} days"
        print(f"{days}, reads at most {chunk.read_bytes} bytes")
    if args.dry_run:
        return 0
    for number, chunk in enumerate(chunks, 1):
        log.info("backfill chunk %d of %d: %s .. %s", number, len(chunks), chunk.start, chunk.end)
        result = subprocess.run([_dbt(), *dbt_args, "--vars", chunk.dbt_vars()], check=False)
        if result.returncode != 0:
            raise UserError(
                f"dbt failed on chunk {chunk.start} .. {chunk.end}; the chunks before it are "
                f"built: fix the cause, then rerun with --start {chunk.start}"
            )
    return 0
