"""The field vocabulary of `b2p sample --vocabulary field`: the same publisher's slots and ads,
written the way publishers' stored copies of the v4 feed show it (SQL over a BigQuery sync, a
Databricks "gold" table, the Publisher API docs), not in the project's own contract names:

- event_time compact UTC (`20210218143005`); `event_type` (`i`, `c`) beside `event_name`, whose
  names come in camelCase or lower case (by request);
- no slot_id: `slot_index` (restarts in each time position class), `global_slot_index` (the
  slot's place in its request) and `position_in_slot` (an ad's place in its slot);
- `max_duration` (repeated on the slot's ad rows), `ad_duration`, `creative_duration`;
  `ad_unit_id`, `placement_id`, `creative_id`, `creative_rendition_id`;
- `sales_channel_type` (`Direct Sold`, `Reseller Sold`, empty). House, promo, filler and
  default ads are booked as direct sales on the publisher's own placements, listed in
  `house_placements.csv` (the shape of the seed `house_placements`);
- `time_position_class` in lower case, `Unknown` for a class the feed has no name for; ids `-1`
  or empty for none (by request); no `series_id`, no `network_id`;
- transaction ids like `1615179601201335581-a120`; `all_request_kv` full of `,`, `=`, `&` and
  quotes;
- snake_case or PascalCase headers; comma-, tab- or semicolon-separated files;
- companion name files `names/<entity>.csv` (`id,name`): site, site_section (the name is the
  `|`-separated path `site|section`), series, placement, video_asset, network.

`FieldView` says what this vocabulary logs for each slot of the world: its transaction id, slot
key (`global_slot_index`, what `b2p inspect` proposes for slot_id), class and sales channel.
The ground truth is computed from `FieldView.logged_slots`, the world's objects seen through it
(`ingest.sample.truth`), never from the files.
"""

from __future__ import annotations

import csv
import io
import random
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from ingest.sample.files import FilePlan, HourPlan, HourPlans, LogEvent, text
from ingest.sample.truth import NOT_MONETIZED
from ingest.sample.world import NETWORK_ID, Ad, Catalogue, Slot, Visitor

FIELD_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "event_time",
    "event_type",
    "event_name",
    "site_id",
    "site_section_id",
    "video_asset_id",
    "time_position_class",
    "slot_index",
    "global_slot_index",
    "position_in_slot",
    "max_duration",
    "ad_unit_id",
    "ad_id",
    "placement_id",
    "creative_id",
    "creative_rendition_id",
    "creative_duration",
    "ad_duration",
    "sales_channel_type",
    "all_request_kv",
)
FIELD_CLASSES: dict[str, str] = {
    "PREROLL": "preroll",
    "MIDROLL": "midroll",
    "PAUSE_MIDROLL": "pause_midroll",
    "POSTROLL": "postroll",
    "OVERLAY": "overlay",
    "DISPLAY": "display",
}
UNKNOWN_CLASS = "Unknown"
AD_UNITS: dict[str, int] = {
    name: 7_000_001 + index for index, name in enumerate([*FIELD_CLASSES.values(), UNKNOWN_CLASS])
}
RESELLER_SOLD = frozenset({"OPEN_MARKET"})
EVENT_NAMES = {"click": "defaultClick"}  # the world's followups otherwise keep their names
DELIMITERS = (",", "\t", ";")


def field_class(time_position_class: str) -> str:
    return FIELD_CLASSES.get(time_position_class.strip().upper(), UNKNOWN_CLASS)


def sales_channel(sales_type: str | None) -> str:
    """`Direct Sold`, `Reseller Sold` or '' (unknown): house and promo ads are direct too."""
    if sales_type is None or not sales_type.strip():
        return ""
    return "Reseller Sold" if sales_type.strip().upper() in RESELLER_SOLD else "Direct Sold"


def house_placements(catalogue: Catalogue) -> list[int]:
    """The placements of the publisher's own (house, promo, filler, default) ads."""
    unpaid = (
        c for c in catalogue.creatives if (c.sales_type or "").strip().upper() in NOT_MONETIZED
    )
    return sorted({c.placement_id for c in unpaid})


def field_catalogue(catalogue: Catalogue) -> Catalogue:
    """The catalogue as the companion files name it: a site section is `site|section`."""
    sites = {site.site_id: site.name for site in catalogue.sites}
    sections = tuple(
        replace(section, name=f"{sites[section.site_id]}|{section.name}")
        for section in catalogue.site_sections
    )
    return replace(catalogue, site_sections=sections)


@dataclass(frozen=True)
class SlotPlace:
    slot_index: int  # within its time position class, in its request
    global_slot_index: int  # within its request


class FieldView:
    """What the field vocabulary logs for the world's slots: ids, keys, classes, sales."""

    def __init__(self, slots: Sequence[Slot]) -> None:
        self.transaction_ids: dict[str, str] = {}
        self.places: dict[tuple[str, str], SlotPlace] = {}
        requests: dict[str, list[Slot]] = defaultdict(list)
        for slot in slots:
            requests[slot.transaction_id].append(slot)
        for serial, (transaction_id, request) in enumerate(requests.items()):
            seconds = transaction_id.split("-", 1)[0]
            # 9 digits of serial x 7919 (mod 10^9, a bijection): unique, and real-looking
            self.transaction_ids[transaction_id] = (
                f"{seconds}{serial * 7919 % 10**9:09d}-a{100 + serial % 900}"
            )
            per_class: Counter[str] = Counter()
            for index, slot in enumerate(
                sorted(request, key=lambda s: (s.event_time_ms, s.slot_id))
            ):
                position_class = field_class(slot.time_position_class)
                self.places[(transaction_id, slot.slot_id)] = SlotPlace(
                    per_class[position_class], index
                )
                per_class[position_class] += 1

    def slot_key(self, slot: Slot) -> str:
        """The slot_id the mapping `global_slot_index → slot_id` gives the slot."""
        return str(self.places[(slot.transaction_id, slot.slot_id)].global_slot_index)

    def logged_slot(self, slot: Slot) -> Slot:
        """The slot as this vocabulary logs it: the ground truth is computed from these."""
        return replace(
            slot,
            transaction_id=self.transaction_ids[slot.transaction_id],
            slot_id=self.slot_key(slot),
            time_position_class=field_class(slot.time_position_class),
            series_id=None,  # the feed has no series_id (DECISIONLOG.md)
            ads=tuple(
                replace(ad, sales_type=sales_channel(ad.sales_type) or None) for ad in slot.ads
            ),
        )

    def logged_slots(self, slots: Iterable[Slot]) -> list[Slot]:
        return [self.logged_slot(slot) for slot in slots]

    def events(self, slots: Iterable[Slot]) -> list[LogEvent]:
        return [event for slot in slots for event in self._slot_events(slot)]

    def _slot_events(self, slot: Slot) -> Iterator[LogEvent]:
        place = self.places[(slot.transaction_id, slot.slot_id)]
        transaction_id = self.transaction_ids[slot.transaction_id]
        request_hash = zlib.crc32(transaction_id.encode())
        lower_names = request_hash % 4 == 0  # some SDKs log the names lower-cased
        no_id = "-1" if request_hash % 3 else ""  # both mean none

        def some_id(value: int | None) -> str:
            return no_id if value is None else str(value)

        def named(name: str) -> str:
            return name.lower() if lower_names else name

        position_class = field_class(slot.time_position_class)
        context = {
            "transaction_id": transaction_id,
            "site_id": some_id(slot.site_id),
            "site_section_id": some_id(slot.site_section_id),
            "video_asset_id": some_id(slot.video_asset_id),
            "time_position_class": position_class,
            "slot_index": str(place.slot_index),
            "global_slot_index": str(place.global_slot_index),
            "max_duration": text(slot.max_slot_duration),
            "ad_unit_id": str(AD_UNITS[position_class]),
            "all_request_kv": request_key_values(slot.visitor, slot.site_id),
        }
        if slot.logged:
            no_ad = dict.fromkeys(
                ("ad_id", "placement_id", "creative_id", "creative_rendition_id"), no_id
            )
            yield LogEvent(
                slot.event_time_ms,
                transaction_id,
                {
                    **context,
                    **no_ad,
                    "position_in_slot": "-1",
                    "event_type": "i",
                    "event_name": named("slotImpression"),
                },
            )
        for position, ad in enumerate(slot.ads):
            values = {**context, **ad_values(ad), "position_in_slot": str(position)}
            yield LogEvent(
                ad.event_time_ms,
                transaction_id,
                {**values, "event_type": "i", "event_name": named("defaultImpression")},
            )
            for name, time_ms in ad.followups:
                kind = "c" if name == "click" else "i"
                event_name = named(EVENT_NAMES.get(name, name))
                yield LogEvent(
                    time_ms,
                    transaction_id,
                    {**values, "event_type": kind, "event_name": event_name},
                )


def ad_values(ad: Ad) -> dict[str, str]:
    return {
        "ad_id": str(ad.ad_id),
        "placement_id": str(ad.placement_id),
        "creative_id": str(ad.creative_id),
        "creative_rendition_id": str(ad.creative_id * 10 + 3),
        "creative_duration": text(ad.ad_duration),
        "ad_duration": text(ad.ad_duration),
        "sales_channel_type": sales_channel(ad.sales_type),
    }


def request_key_values(visitor: Visitor, site_id: int | None) -> str:
    """The request's key-values as the feed stores them: `,`, `=`, `&` and quotes inside."""
    site = site_id if site_id is not None else "embed"
    return (
        f'_fw_vcid2={visitor.ad_server_node}&_fw_h_user_agent="{visitor.user_agent}"'
        f"&csid=bp_{site}&note={visitor.custom_visitor_field}"
    )


# ---------------------------------------------------------------------------------------------
# files


def field_file_plan(rng: random.Random) -> FilePlan:
    shuffled = rng.random() < 0.2
    columns = tuple(rng.sample(FIELD_COLUMNS, len(FIELD_COLUMNS))) if shuffled else FIELD_COLUMNS
    return FilePlan(
        time_format="compact",
        camel_case=False,
        columns=columns,
        crlf=rng.random() < 0.25,
        bom=rng.random() < 0.15,
        delimiter=rng.choices(DELIMITERS, weights=(8, 1, 1))[0],
        pascal_case=rng.random() < 0.5,
    )


def field_plan_hours(rng: random.Random, first_hour: int, count: int) -> HourPlans:
    """Random field-vocabulary plans; the first hours carry both header styles and every
    delimiter, whatever the seed."""
    plans: dict[int, HourPlan] = {}
    for hour in range(first_hour, first_hour + count):
        n_files = 2 if rng.random() < 0.25 else 1
        plans[hour] = HourPlan(hour, tuple(field_file_plan(rng) for _ in range(n_files)))
    guaranteed = (
        (
            FilePlan("compact", False, FIELD_COLUMNS, crlf=False, bom=False),
            FilePlan("compact", False, FIELD_COLUMNS, crlf=True, bom=True, pascal_case=True),
        ),
        (FilePlan("compact", False, FIELD_COLUMNS, crlf=False, bom=False, delimiter="\t"),),
        (
            FilePlan(
                "compact",
                False,
                FIELD_COLUMNS,
                crlf=True,
                bom=False,
                delimiter=";",
                pascal_case=True,
            ),
        ),
    )
    for offset, files in enumerate(guaranteed[:count]):
        plans[first_hour + offset] = HourPlan(first_hour + offset, files)
    return HourPlans(plans)


def companion_files(catalogue: Catalogue) -> dict[str, bytes]:
    """`names/<entity>.csv` as a delivery carries them: `id,name`, the names the API knows."""
    placements = sorted({c.placement_id: c for c in catalogue.creatives}.items())
    tables: dict[str, list[tuple[int, str]]] = {
        "site": [(s.site_id, s.name) for s in catalogue.sites if s.in_dimension],
        "site_section": [
            (s.site_section_id, s.name) for s in catalogue.site_sections if s.in_dimension
        ],
        "series": [(s.series_id, s.name) for s in catalogue.series if s.in_dimension],
        "placement": [(pid, placement_name(c.sales_type, c.placement)) for pid, c in placements],
        "video_asset": [(v.video_asset_id, f"Video {v.video_asset_id}") for v in catalogue.videos],
        "network": [(NETWORK_ID, "Bones & Peaches Network")],
    }
    files: dict[str, bytes] = {}
    for entity, rows in tables.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("id", "name"))
        writer.writerows(rows)
        files[f"names/{entity}.csv"] = buffer.getvalue().encode("utf-8")
    return files


def placement_name(sales_type: str | None, ad_format: str) -> str:
    family = (sales_type or "").strip().upper()
    if family in NOT_MONETIZED:
        return f"House - {family.title()} ({ad_format})"
    return f"{(family or 'Unsold').replace('_', ' ').title()} - {ad_format}"


def house_placements_csv(catalogue: Catalogue) -> bytes:
    return ("placement_id\n" + "".join(f"{p}\n" for p in house_placements(catalogue))).encode()
