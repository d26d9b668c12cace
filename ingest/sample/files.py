"""How `b2p sample` serialises its slots and ads into FreeWheel-like hourly gzip CSV files.

    logs/YYYY/MM/DD/HH/<network_id>_v4_<YYYYMMDDHH>_<n>.csv.gz

A file holds the events whose event_time falls in its hour (UTC); some hours have two files
(two log servers), and a request's events go to one of them. Files differ the way real
deliveries do: event_time format, header spelling (snake_case or camelCase) and column order,
LF or CRLF, a UTF-8 BOM or not, and which extra columns they carry. Some events are logged
twice (a retried beacon), in the same file or in the hour's other file.

An hour that has an epoch-seconds (or compact) file logs whole seconds everywhere, so that an
event and its duplicate are still identical whichever files they are in; the world generator
asks `HourPlans.quantize` for that.

The field vocabulary (`ingest.sample.field`) writes other columns and values through the same
plans and files (`write_events`).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import random
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ingest.logs.contract import CONTRACT
from ingest.sample.world import MS_PER_HOUR, MS_PER_SECOND, NETWORK_ID, Slot

TIME_FORMATS = ("epoch_seconds", "epoch_decimal", "sql", "iso")
WHOLE_SECOND_FORMATS = ("epoch_seconds", "compact")
# The columns the generator has values for, in its own order (a file may order columns freely, so
# the sample does not use the contract's); any other contract column is written empty after them.
_GENERATED_FIRST = (
    "transaction_id",
    "event_name",
    "event_time",
    "network_id",
    "site_id",
    "site_section_id",
    "series_id",
    "video_asset_id",
    "slot_id",
    "time_position_class",
    "max_slot_duration",
    "ad_id",
    "creative_id",
    "ad_duration",
    "sales_type",
)
CONTRACT_ORDER = _GENERATED_FIRST + tuple(
    column.name for column in CONTRACT if column.name not in _GENERATED_FIRST
)
EXTRA_COLUMNS = ("user_agent", "custom_visitor_field", "ad_server_node")
# Sets of extra columns an hour's files carry; both files of an hour carry the same set so a
# duplicated event is the same record in either.
EXTRA_COLUMN_SETS: tuple[tuple[str, ...], ...] = (
    ("user_agent", "custom_visitor_field"),
    ("user_agent", "custom_visitor_field", "ad_server_node"),
    ("user_agent",),
    (),
)
DUPLICATE_RATE = 0.008


@dataclass(frozen=True)
class FilePlan:
    time_format: str
    camel_case: bool
    columns: tuple[str, ...]  # canonical names in file order
    crlf: bool
    bom: bool
    delimiter: str = ","
    pascal_case: bool = False  # TransactionId (wins over camel_case)


@dataclass(frozen=True)
class HourPlan:
    hour: int  # hours since the epoch
    files: tuple[FilePlan, ...]

    @property
    def whole_seconds(self) -> bool:
        return any(f.time_format in WHOLE_SECOND_FORMATS for f in self.files)


class HourPlans:
    """The file layout of every hour, decided before any event exists."""

    def __init__(self, plans: dict[int, HourPlan]) -> None:
        self._plans = plans

    def __getitem__(self, hour: int) -> HourPlan:
        return self._plans[hour]

    def quantize(self, time_ms: int) -> int:
        plan = self._plans.get(time_ms // MS_PER_HOUR)
        if plan is not None and plan.whole_seconds:
            return time_ms - time_ms % MS_PER_SECOND
        return time_ms


def random_file_plan(rng: random.Random, extras: tuple[str, ...]) -> FilePlan:
    # Extras keep their order (ingest keeps it in extra_columns), so a duplicate retried into the
    # hour's other file is the same lake record, extra_columns included.
    shuffled = rng.random() < 0.2
    contract = (
        tuple(rng.sample(CONTRACT_ORDER, len(CONTRACT_ORDER))) if shuffled else CONTRACT_ORDER
    )
    return FilePlan(
        time_format=rng.choices(TIME_FORMATS, weights=(1, 2, 4, 3))[0],
        camel_case=rng.random() < 0.2,
        columns=contract + extras,
        crlf=rng.random() < 0.25,
        bom=rng.random() < 0.15,
    )


def plan_hours(rng: random.Random, first_hour: int, count: int) -> HourPlans:
    """Random plans, with the first hours fixed so that every variant occurs in any sample."""
    plans: dict[int, HourPlan] = {}
    for hour in range(first_hour, first_hour + count):
        extras = rng.choice(EXTRA_COLUMN_SETS)
        n_files = 2 if rng.random() < 0.25 else 1
        files = tuple(random_file_plan(rng, extras) for _ in range(n_files))
        plans[hour] = HourPlan(hour, files)
    every_column = CONTRACT_ORDER + EXTRA_COLUMNS
    reordered = (*reversed(every_column[:6]), *every_column[6:])
    guaranteed = (
        # hour 0: two files (cross-file duplicates), BOM, CRLF, camelCase, ISO and SQL times
        (
            FilePlan("sql", False, every_column, crlf=False, bom=True),
            FilePlan("iso", True, every_column, crlf=True, bom=False),
        ),
        (FilePlan("epoch_decimal", False, reordered, crlf=False, bom=False),),
        (FilePlan("epoch_seconds", True, CONTRACT_ORDER, crlf=True, bom=True),),
    )
    for offset, files in enumerate(guaranteed):
        if offset < count:
            plans[first_hour + offset] = HourPlan(first_hour + offset, files)
    return HourPlans(plans)


# ---------------------------------------------------------------------------------------------
# events


@dataclass(frozen=True)
class LogEvent:
    time_ms: int
    transaction_id: str
    values: dict[str, str]  # canonical column name -> raw text ('' = empty)


def text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def slot_events(slot: Slot) -> Iterator[LogEvent]:
    """The rows one slot produces: its slotImpression (unless lost), then its ads' events."""
    context = {
        "transaction_id": slot.transaction_id,
        "network_id": text(NETWORK_ID),
        "site_id": text(slot.site_id),
        "site_section_id": text(slot.site_section_id),
        "series_id": text(slot.series_id),
        "video_asset_id": text(slot.video_asset_id),
        "slot_id": slot.slot_id,
        "time_position_class": slot.time_position_class,
        "user_agent": slot.visitor.user_agent,
        "custom_visitor_field": slot.visitor.custom_visitor_field,
        "ad_server_node": slot.visitor.ad_server_node,
    }
    empty_ad = {"ad_id": "", "creative_id": "", "ad_duration": "", "sales_type": ""}
    if slot.logged:
        yield LogEvent(
            slot.event_time_ms,
            slot.transaction_id,
            {
                **context,
                **empty_ad,
                "event_name": "slotImpression",
                "max_slot_duration": text(slot.max_slot_duration),
            },
        )
    for ad in slot.ads:
        ad_values = {
            **context,
            "ad_id": text(ad.ad_id),
            "creative_id": text(ad.creative_id),
            "ad_duration": text(ad.ad_duration),
            "sales_type": text(ad.sales_type),
            "max_slot_duration": "",
        }
        yield LogEvent(
            ad.event_time_ms,
            slot.transaction_id,
            {**ad_values, "event_name": "defaultImpression"},
        )
        for name, time_ms in ad.followups:
            yield LogEvent(time_ms, slot.transaction_id, {**ad_values, "event_name": name})


def format_time(time_ms: int, time_format: str) -> str:
    seconds, millis = divmod(time_ms, MS_PER_SECOND)
    if time_format in WHOLE_SECOND_FORMATS and millis:
        raise ValueError(f"{time_ms} ms cannot be written as whole seconds ({time_format})")
    if time_format == "epoch_seconds":
        return str(seconds)
    if time_format == "epoch_decimal":
        return f"{seconds}.{millis:03d}"
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if time_format == "compact":
        return f"{moment:%Y%m%d%H%M%S}"
    if time_format == "sql":
        return f"{moment:%Y-%m-%d %H:%M:%S}.{millis:03d}"
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def header_name(column: str, plan: FilePlan) -> str:
    if plan.pascal_case:
        return pascal(column)
    return camel(column) if plan.camel_case else column


# ---------------------------------------------------------------------------------------------
# files


@dataclass
class PendingFile:
    key: str
    plan: FilePlan
    rows: list[tuple[int, float, LogEvent]]  # (time, tie-break, event): file order after sort


@dataclass(frozen=True)
class WrittenLogs:
    files: dict[str, bytes]  # key -> gzip bytes
    events: int  # rows written, duplicates included
    duplicates: int


def file_key(hour: int, index: int) -> str:
    moment = dt.datetime.fromtimestamp(hour * 3600, tz=dt.UTC)
    return f"logs/{moment:%Y/%m/%d/%H}/{NETWORK_ID}_v4_{moment:%Y%m%d%H}_{index}.csv.gz"


def distribute(
    rng: random.Random, events: Iterable[LogEvent], plans: HourPlans
) -> list[PendingFile]:
    """Put every event into its hour's file (by request) and log a few of them twice."""
    pending: dict[tuple[int, int], PendingFile] = {}

    def target(hour: int, index: int) -> PendingFile:
        if (hour, index) not in pending:
            plan = plans[hour].files[index]
            pending[(hour, index)] = PendingFile(file_key(hour, index), plan, [])
        return pending[(hour, index)]

    cross_file_placed = False
    for sequence, event in enumerate(events):
        hour = event.time_ms // MS_PER_HOUR
        n_files = len(plans[hour].files)
        index = zlib.crc32(event.transaction_id.encode()) % n_files
        target(hour, index).rows.append((event.time_ms, sequence, event))
        # Until one event has been retried into another file, the next candidate always is.
        force_cross = n_files == 2 and not cross_file_placed
        if not force_cross and rng.random() >= DUPLICATE_RATE:
            continue
        where = rng.random()
        if force_cross or (n_files == 2 and where < 0.3):
            target(hour, 1 - index).rows.append((event.time_ms, sequence, event))
            cross_file_placed = True
        elif where < 0.7:
            target(hour, index).rows.append((event.time_ms, sequence + 0.5, event))  # adjacent
        else:  # a late retry, logged out of order somewhere in the hour
            late = hour * MS_PER_HOUR + rng.randrange(MS_PER_HOUR)
            target(hour, index).rows.append((late, sequence, event))
    return sorted(pending.values(), key=lambda f: f.key)


def render(pending: PendingFile) -> bytes:
    plan = pending.plan
    buffer = io.StringIO()
    terminator = "\r\n" if plan.crlf else "\n"
    writer = csv.writer(buffer, lineterminator=terminator, delimiter=plan.delimiter)
    writer.writerow([header_name(c, plan) for c in plan.columns])
    for _, _, event in sorted(pending.rows, key=lambda row: (row[0], row[1])):
        values = {**event.values, "event_time": format_time(event.time_ms, plan.time_format)}
        writer.writerow([values.get(column, "") for column in plan.columns])
    content = ("\ufeff" if plan.bom else "") + buffer.getvalue()
    return gzip.compress(content.encode("utf-8"), compresslevel=6, mtime=0)


def write_logs(rng: random.Random, slots: Iterable[Slot], plans: HourPlans) -> WrittenLogs:
    return write_events(rng, [event for slot in slots for event in slot_events(slot)], plans)


def write_events(rng: random.Random, events: list[LogEvent], plans: HourPlans) -> WrittenLogs:
    files = distribute(rng, events, plans)
    rendered = {pending.key: render(pending) for pending in files}
    written = sum(len(pending.rows) for pending in files)
    return WrittenLogs(rendered, events=written, duplicates=written - len(events))
