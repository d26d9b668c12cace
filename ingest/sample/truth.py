"""The ground truth of a sample: every mart computed straight from the generator's slots and ads.

Nothing here reads the CSV files or runs SQL: the truth comes from the objects the generator
made, so an end-to-end test that compares the warehouse with it checks ingest and dbt together.
The definitions are those of models/docs.md:

- slot = a (transaction_id, slot_id) with a slotImpression; its time, ids and class come from it;
- slot_type = upper(trim(time_position_class)) through the slot-type map, else 'other';
- monetized ad = sales_type non-empty and upper(trim(sales_type)) not HOUSE/PROMO/FILLER/DEFAULT,
  and its placement not one of the house placements;
- capacity = max_slot_duration, or delivered seconds when it is missing;
- monetized seconds = least(monetized ad seconds, capacity); unsold = capacity − monetized.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ingest.sample.world import Catalogue, Slot

SLOT_TYPES: dict[str, str] = {
    "PREROLL": "preroll",
    "MIDROLL": "midroll",
    "PAUSE_MIDROLL": "midroll",
    "POSTROLL": "postroll",
    "OVERLAY": "overlay",
    "DISPLAY": "display",
}
NOT_MONETIZED = frozenset({"HOUSE", "PROMO", "FILLER", "DEFAULT"})

METRICS = (
    "slot_impressions",
    "ad_impressions",
    "monetized_impressions",
    "capacity_seconds",
    "delivered_seconds",
    "monetized_seconds",
    "unsold_seconds",
)
STG_COLUMNS = (
    "transaction_id",
    "slot_id",
    "event_time",
    "event_date",
    "event_hour",
    "slot_type",
    "site_id",
    "site_section_id",
    "series_id",
    "max_slot_duration",
    *METRICS,
)
MART_METRICS = (*METRICS, "sell_through_rate")
HOURLY_COLUMNS = ("event_date", "event_hour", *MART_METRICS)
ORPHAN_COLUMNS = ("transaction_id", "slot_id", "event_time", "ad_duration")
HOURLY_MARTS = {
    "capacity_preroll": "preroll",
    "capacity_midroll": "midroll",
    "capacity_overlay": "overlay",
}

Row = dict[str, object]
K = TypeVar("K")


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[Row]


def slot_type(time_position_class: str) -> str:
    return SLOT_TYPES.get(time_position_class.strip().upper(), "other")


def is_monetized(sales_type: str | None) -> bool:
    return (
        sales_type is not None
        and sales_type != ""
        and (sales_type.strip().upper() not in NOT_MONETIZED)
    )


@dataclass(frozen=True)
class SlotFacts:
    """One row of stg_freewheel__slots."""

    slot: Slot
    moment: dt.datetime  # UTC
    slot_type: str
    ad_impressions: int
    monetized_impressions: int
    capacity_seconds: float
    delivered_seconds: float
    monetized_seconds: float

    @property
    def unsold_seconds(self) -> float:
        return self.capacity_seconds - self.monetized_seconds

    def metrics(self) -> tuple[float, ...]:
        return (
            1,
            self.ad_impressions,
            self.monetized_impressions,
            self.capacity_seconds,
            self.delivered_seconds,
            self.monetized_seconds,
            self.unsold_seconds,
        )


def slot_facts(slot: Slot, house: frozenset[int] = frozenset()) -> SlotFacts:
    delivered = sum((ad.ad_duration or 0.0) for ad in slot.ads)
    paid = [ad for ad in slot.ads if is_monetized(ad.sales_type) and ad.placement_id not in house]
    paid_seconds = sum((ad.ad_duration or 0.0) for ad in paid)
    capacity = slot.max_slot_duration if slot.max_slot_duration is not None else delivered
    return SlotFacts(
        slot=slot,
        moment=dt.datetime.fromtimestamp(slot.event_time_ms / 1000, tz=dt.UTC),
        slot_type=slot_type(slot.time_position_class),
        ad_impressions=len(slot.ads),
        monetized_impressions=len(paid),
        capacity_seconds=float(capacity),
        delivered_seconds=float(delivered),
        monetized_seconds=float(min(paid_seconds, capacity)),
    )


def all_slot_facts(slots: Iterable[Slot], house: frozenset[int] = frozenset()) -> list[SlotFacts]:
    logged = [slot for slot in slots if slot.logged]
    logged.sort(key=lambda s: (s.event_time_ms, s.transaction_id, s.slot_id))
    return [slot_facts(slot, house) for slot in logged]


def iso_millis(time_ms: int) -> str:
    seconds, millis = divmod(time_ms, 1000)
    return f"{dt.datetime.fromtimestamp(seconds, tz=dt.UTC):%Y-%m-%d %H:%M:%S}.{millis:03d}"


def stg_rows(facts: Sequence[SlotFacts]) -> list[Row]:
    rows: list[Row] = []
    for fact in facts:
        slot = fact.slot
        row: Row = {
            "transaction_id": slot.transaction_id,
            "slot_id": slot.slot_id,
            "event_time": iso_millis(slot.event_time_ms),
            "event_date": fact.moment.date().isoformat(),
            "event_hour": fact.moment.hour,
            "slot_type": fact.slot_type,
            "site_id": slot.site_id,
            "site_section_id": slot.site_section_id,
            "series_id": slot.series_id,
            "max_slot_duration": slot.max_slot_duration,
        }
        row.update(zip(METRICS, fact.metrics(), strict=True))
        rows.append(row)
    return rows


def aggregate(facts: Iterable[SlotFacts], grain: Callable[[SlotFacts], K]) -> dict[K, list[float]]:
    """Summed metrics per grain key, keys in first-seen order of the (time-sorted) slots."""
    totals: dict[K, list[float]] = {}
    for fact in facts:
        sums = totals.setdefault(grain(fact), [0] * len(METRICS))
        for position, value in enumerate(fact.metrics()):
            sums[position] += value
    return totals


def with_metrics(key_columns: Mapping[str, object], sums: Sequence[float]) -> Row:
    row: Row = dict(key_columns)
    row.update(zip(METRICS, sums, strict=True))
    capacity = sums[METRICS.index("capacity_seconds")]
    monetized = sums[METRICS.index("monetized_seconds")]
    row["sell_through_rate"] = monetized / capacity if capacity != 0 else None
    return row


def hourly_rows(facts: Sequence[SlotFacts], wanted_type: str) -> list[Row]:
    totals = aggregate(
        (f for f in facts if f.slot_type == wanted_type),
        lambda f: (f.moment.date().isoformat(), f.moment.hour),
    )
    return [
        with_metrics({"event_date": date, "event_hour": hour}, sums)
        for (date, hour), sums in sorted(totals.items())
    ]


@dataclass(frozen=True)
class Dimension:
    """How a by-<entity> mart names its ids."""

    id_column: str
    name_column: str
    label: str  # 'site' -> 'unknown site 123' / 'no site'
    names: dict[int, str]
    id_of: Callable[[Slot], int | None]

    @property
    def columns(self) -> tuple[str, ...]:
        return ("event_date", "slot_type", self.id_column, self.name_column, *MART_METRICS)

    def name(self, entity_id: int | None) -> str:
        if entity_id is None:
            return f"no {self.label}"
        return self.names.get(entity_id, f"unknown {self.label} {entity_id}")


def dimensions(catalogue: Catalogue) -> dict[str, Dimension]:
    return {
        "capacity_by_site": Dimension(
            "site_id",
            "site_name",
            "site",
            {s.site_id: s.name for s in catalogue.sites if s.in_dimension},
            lambda slot: slot.site_id,
        ),
        "capacity_by_site_section": Dimension(
            "site_section_id",
            "site_section_name",
            "site section",
            {s.site_section_id: s.name for s in catalogue.site_sections if s.in_dimension},
            lambda slot: slot.site_section_id,
        ),
        "capacity_by_series": Dimension(
            "series_id",
            "series_name",
            "series",
            {s.series_id: s.name for s in catalogue.series if s.in_dimension},
            lambda slot: slot.series_id,
        ),
    }


def by_dimension_rows(facts: Sequence[SlotFacts], dimension: Dimension) -> list[Row]:
    totals = aggregate(
        facts, lambda f: (f.moment.date().isoformat(), f.slot_type, dimension.id_of(f.slot))
    )

    def order(key: tuple[str, str, int | None]) -> tuple[str, str, bool, int]:
        date, kind, entity_id = key
        return (date, kind, entity_id is None, entity_id or 0)  # nulls last

    return [
        with_metrics(
            {
                "event_date": date,
                "slot_type": kind,
                dimension.id_column: entity_id,
                dimension.name_column: dimension.name(entity_id),
            },
            totals[(date, kind, entity_id)],
        )
        for date, kind, entity_id in sorted(totals, key=order)
    ]


def orphan_rows(slots: Iterable[Slot]) -> list[Row]:
    orphans = [
        {
            "transaction_id": slot.transaction_id,
            "slot_id": slot.slot_id,
            "event_time": iso_millis(ad.event_time_ms),
            "ad_duration": ad.ad_duration,
        }
        for slot in slots
        if not slot.logged
        for ad in slot.ads
    ]
    return sorted(orphans, key=lambda r: (r["event_time"], r["transaction_id"], r["slot_id"]))


def ground_truth(
    slots: Sequence[Slot], catalogue: Catalogue, house: frozenset[int] = frozenset()
) -> dict[str, Table]:
    """Every ground-truth table by name (file name without .csv): `slots` as logged, named
    from `catalogue`, with the ads of the `house` placements never monetized."""
    facts = all_slot_facts(slots, house)
    tables = {"stg_freewheel__slots": Table(STG_COLUMNS, stg_rows(facts))}
    for model, wanted_type in HOURLY_MARTS.items():
        tables[model] = Table(HOURLY_COLUMNS, hourly_rows(facts, wanted_type))
    for model, dimension in dimensions(catalogue).items():
        tables[model] = Table(dimension.columns, by_dimension_rows(facts, dimension))
    tables["orphan_ads"] = Table(ORPHAN_COLUMNS, orphan_rows(slots))
    return tables


def cell(value: object) -> str:
    """Full precision (repr) for floats, '' for null."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(table: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(cell(row[column]) for column in table.columns)
    return buffer.getvalue().encode("utf-8")
