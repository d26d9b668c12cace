"""A FreeWheel correction of one sample log file, and the ground truth after it.

The corrected file is the original with some slots removed (every row of theirs in that file)
and some slots moved one day earlier (their slotImpression's event_time). The expected models
are the generator's ground truth with the same change applied to its slot rows, then every mart
re-aggregated from those rows here, independently of the dbt models.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.logs.contract import normalise_header
from ingest.sample.truth import METRICS  # the names; the values are recomputed here

HOURLY = {
    "capacity_preroll": "preroll",
    "capacity_midroll": "midroll",
    "capacity_overlay": "overlay",
}
BY_DIMENSION = {
    "capacity_by_site": ("site_id", "site_name"),
    "capacity_by_site_section": ("site_section_id", "site_section_name"),
    "capacity_by_series": ("series_id", "series_name"),
}
Row = dict[str, str]


@dataclass(frozen=True)
class LogFile:
    path: Path
    header: list[str]
    rows: list[list[str]]
    newline: str

    @classmethod
    def read(cls, path: Path) -> LogFile:
        raw = gzip.decompress(path.read_bytes()).decode("utf-8-sig")
        newline = "\r\n" if "\r\n" in raw else "\n"
        header, *rows = list(csv.reader(io.StringIO(raw, newline="")))
        return cls(path, header, rows, newline)

    def column(self, name: str) -> int:
        return [normalise_header(h) for h in self.header].index(name)

    def slot_keys(self, event: str) -> list[tuple[str, str]]:
        tx, slot, kind = (
            self.column("transaction_id"),
            self.column("slot_id"),
            self.column("event_name"),
        )
        return [(r[tx], r[slot]) for r in self.rows if r[kind].strip().lower() == event]

    def corrected(self, removed: set[tuple[str, str]], moved: dict[tuple[str, str], str]) -> bytes:
        tx, slot = self.column("transaction_id"), self.column("slot_id")
        kind, time = self.column("event_name"), self.column("event_time")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=self.newline)
        writer.writerow(self.header)
        for row in self.rows:
            key = (row[tx], row[slot])
            if key in removed:
                continue
            if key in moved and row[kind].strip().lower() == "slotimpression":
                row = [*row[:time], moved[key], *row[time + 1 :]]
            writer.writerow(row)
        return gzip.compress(out.getvalue().encode("utf-8"))


@dataclass(frozen=True)
class Correction:
    file: Path
    content: bytes
    removed: set[tuple[str, str]]
    moved: dict[tuple[str, str], str]  # slot -> its new event_time


def choose_correction(logs: Path, stg_truth: list[Row], day: dt.date, count: int = 2) -> Correction:
    """A file of `day` holding `2 * count` slots that are logged once, in it alone."""
    files = [LogFile.read(p) for p in sorted(logs.rglob("*.csv.gz"))]
    impressions: Counter[tuple[str, str]] = Counter()
    for log in files:
        impressions.update(log.slot_keys("slotimpression"))
    truth = {(r["transaction_id"], r["slot_id"]): r for r in stg_truth}
    for log in files:
        eligible = [
            key
            for key in dict.fromkeys(log.slot_keys("slotimpression"))
            if impressions[key] == 1
            and key in truth
            and truth[key]["event_date"] == day.isoformat()
        ]
        if len(eligible) >= 2 * count:
            removed = set(eligible[:count])
            moved = {
                key: _day_before(truth[key]["event_time"]) for key in eligible[count : 2 * count]
            }
            return Correction(log.path, log.corrected(removed, moved), removed, moved)
    raise AssertionError(f"no sample file of {day} has {2 * count} slots logged once")


def _day_before(event_time: str) -> str:
    moment = dt.datetime.strptime(event_time, "%Y-%m-%d %H:%M:%S.%f") - dt.timedelta(days=1)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def corrected_truth(truth: dict[str, list[Row]], correction: Correction) -> dict[str, list[Row]]:
    """The ground truth of every compared model after the correction."""
    slots = []
    for row in truth["stg_freewheel__slots"]:
        key = (row["transaction_id"], row["slot_id"])
        if key in correction.removed:
            continue
        if key in correction.moved:
            event_time = correction.moved[key]
            row = dict(row, event_time=event_time, event_date=event_time[:10])
        slots.append(row)
    result = {"stg_freewheel__slots": slots}
    for mart, slot_type in HOURLY.items():
        result[mart] = aggregate(
            (r for r in slots if r["slot_type"] == slot_type), ("event_date", "event_hour"), {}
        )
    for mart, (id_column, name_column) in BY_DIMENSION.items():
        names = {r[id_column]: r[name_column] for r in truth[mart]}
        result[mart] = aggregate(
            slots, ("event_date", "slot_type", id_column), {name_column: (id_column, names)}
        )
    return result


def aggregate(
    slots: Iterable[Row], grain: tuple[str, ...], named: dict[str, tuple[str, dict[str, str]]]
) -> list[Row]:
    sums: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0] * len(METRICS))
    for row in slots:
        totals = sums[tuple(row[c] for c in grain)]
        for index, metric in enumerate(METRICS):
            totals[index] += float(row[metric])
    rows = []
    for key, totals in sums.items():
        row = dict(zip(grain, key, strict=True))
        for column, (id_column, names) in named.items():
            row[column] = names[row[id_column]]
        row.update({m: repr(v) for m, v in zip(METRICS, totals, strict=True)})
        capacity, monetized = (
            totals[METRICS.index("capacity_seconds")],
            totals[METRICS.index("monetized_seconds")],
        )
        row["sell_through_rate"] = repr(monetized / capacity) if capacity else ""
        rows.append(row)
    return rows
