"""`b2p sample`: determinism, the realism it promises, and a ground truth that the files agree with.

The files are read back here with nothing but csv/gzip and a parser written for this test, and
the slot metrics are recomputed from them with the definitions of models/docs.md. The
generator's ground truth comes from its in-memory objects, so agreement between the two is the
evidence that both the logs and the truth are right.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingest.cli import main as b2p
from ingest.errors import UserError
from ingest.logs import contract
from ingest.sample import command as sample_command
from ingest.sample import truth
from ingest.sample.truth import METRICS  # the names; the values are recomputed here

CONTRACT = tuple(column.name for column in contract.CONTRACT)
REQUIRED = ("transaction_id", "event_name", "event_time", "slot_id", "time_position_class")
IDS = ("site_id", "site_section_id", "series_id", "video_asset_id", "network_id", "ad_id")
TIME_PATTERNS = {
    "epoch_seconds": re.compile(r"^\d{10}$"),
    "epoch_decimal": re.compile(r"^\d{10}\.\d{3}$"),
    "sql": re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$"),
    "iso": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"),
}
SEEDS = Path(__file__).resolve().parents[3] / "seeds"


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


# the definitions dbt uses, read from its seeds: the ground truth must follow them, not copy them
SLOT_TYPE = {row["time_position_class"]: row["slot_type"] for row in _seed("slot_type_map.csv")}
UNPAID = {row["sales_type"] for row in _seed("not_monetized_sales_types.csv")}


# ---------------------------------------------------------------------------------------------
# reading the sample back, independently of the generator


def snake(header: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", header.strip()).lower()


def parse_time_ms(value: str) -> int:
    if TIME_PATTERNS["epoch_seconds"].match(value) or TIME_PATTERNS["epoch_decimal"].match(value):
        return int(Decimal(value) * 1000)
    moment = dt.datetime.strptime(value.rstrip("Z").replace("T", " "), "%Y-%m-%d %H:%M:%S.%f")
    return (moment - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def time_format(value: str) -> str:
    return next(name for name, pattern in TIME_PATTERNS.items() if pattern.match(value))


@dataclass
class LogFile:
    path: Path
    raw: bytes  # decompressed
    header: list[str]
    rows: list[dict[str, str]]  # normalised header -> value

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8-sig")


@dataclass(frozen=True)
class Event:
    file: Path
    time_ms: int
    values: dict[str, str]  # every column but event_time

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two rows the same event, whichever file and time format they are in."""
        return (self.time_ms, tuple(sorted(self.values.items())))


def read_logs(root: Path) -> list[LogFile]:
    files = []
    for path in sorted((root / "logs").rglob("*.csv.gz")):
        raw = gzip.decompress(path.read_bytes())
        records = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        header = records[0]
        names = [snake(h) for h in header]
        rows = [dict(zip(names, record, strict=True)) for record in records[1:]]
        files.append(LogFile(path, raw, header, rows))
    return files


def events_of(files: Iterable[LogFile]) -> list[Event]:
    return [
        Event(
            file.path,
            parse_time_ms(row["event_time"]),
            {k: v for k, v in row.items() if k != "event_time"},
        )
        for file in files
        for row in file.rows
    ]


def distinct(events: Iterable[Event]) -> list[Event]:
    seen: dict[tuple[object, ...], Event] = {}
    for event in events:
        seen.setdefault(event.identity, event)
    return list(seen.values())


def number(value: str) -> float | None:
    return float(value) if value.strip() else None


def recompute_slots(events: list[Event]) -> dict[tuple[str, str], dict[str, object]]:
    """stg_freewheel__slots by (transaction_id, slot_id), from the distinct events."""
    ads: dict[tuple[str, str], list[Event]] = defaultdict(list)
    slot_rows: dict[tuple[str, str], Event] = {}
    for event in events:
        key = (event["transaction_id"], event["slot_id"])
        name = event["event_name"].lower()
        if name == "slotimpression":
            assert key not in slot_rows, f"two different slotImpressions for {key}"
            slot_rows[key] = event
        elif name == "defaultimpression":
            ads[key].append(event)
    slots = {}
    for key, event in slot_rows.items():
        durations = [number(ad["ad_duration"]) or 0.0 for ad in ads[key]]
        paid = [
            number(ad["ad_duration"]) or 0.0
            for ad in ads[key]
            if ad["sales_type"] and ad["sales_type"].strip().upper() not in UNPAID
        ]
        max_duration = number(event["max_slot_duration"])
        capacity = max_duration if max_duration is not None else sum(durations, 0.0)
        monetized = min(sum(paid, 0.0), capacity)
        moment = dt.datetime.fromtimestamp(event.time_ms / 1000, tz=dt.UTC)
        slots[key] = {
            "transaction_id": key[0],
            "slot_id": key[1],
            "event_time": moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            "event_date": moment.date().isoformat(),
            "event_hour": moment.hour,
            "slot_type": SLOT_TYPE.get(event["time_position_class"].strip().upper(), "other"),
            "site_id": event["site_id"],
            "site_section_id": event["site_section_id"],
            "series_id": event["series_id"],
            "max_slot_duration": max_duration,
            "slot_impressions": 1,
            "ad_impressions": len(ads[key]),
            "monetized_impressions": len(paid),
            "capacity_seconds": capacity,
            "delivered_seconds": sum(durations, 0.0),
            "monetized_seconds": monetized,
            "unsold_seconds": capacity - monetized,
        }
    return slots


def same(expected: object, text: str) -> bool:
    if expected is None:
        return text == ""
    if isinstance(expected, float):
        return text != "" and math.isclose(float(text), expected, rel_tol=0, abs_tol=1e-6)
    return str(expected) == text


def read_truth(root: Path, name: str) -> list[dict[str, str]]:
    with (root / "ground_truth" / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lake")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, lake: Path) -> Path:
    """The default sample (what the demo and the end-to-end test use), with --lake."""
    out = tmp_path_factory.mktemp("sample")
    assert b2p(["sample", "--out", str(out), "--seed", "7", "--lake", str(lake)]) == 0
    return out


@pytest.fixture(scope="module")
def logs(sample: Path) -> list[LogFile]:
    return read_logs(sample)


@pytest.fixture(scope="module")
def events(logs: list[LogFile]) -> list[Event]:
    return events_of(logs)


@pytest.fixture(scope="module")
def unique_events(events: list[Event]) -> list[Event]:
    return distinct(events)


@pytest.fixture(scope="module")
def slots(unique_events: list[Event]) -> dict[tuple[str, str], dict[str, object]]:
    return recompute_slots(unique_events)


def small_sample(root: Path, seed: int) -> dict[str, bytes]:
    assert b2p(["sample", "--out", str(root), "--seed", str(seed), "--days", "1",
                "--slots-per-hour", "30"]) == 0  # fmt: skip
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------
# determinism and the command itself


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = small_sample(tmp_path / "a", seed=3)
    again = small_sample(tmp_path / "b", seed=3)
    other = small_sample(tmp_path / "c", seed=4)
    assert first == again
    assert any(key.startswith("logs/") for key in first)
    logs_first = {k: v for k, v in first.items() if k.startswith("logs/")}
    logs_other = {k: v for k, v in other.items() if k.startswith("logs/")}
    assert logs_first != logs_other
    assert (
        first["ground_truth/stg_freewheel__slots.csv"]
        != (other["ground_truth/stg_freewheel__slots.csv"])
    )


def test_rerun_replaces_an_earlier_sample_and_removes_its_stale_files(tmp_path: Path) -> None:
    bigger = small_sample(tmp_path, seed=3)
    assert b2p(["sample", "--out", str(tmp_path), "--seed", "3", "--days", "1",
                "--slots-per-hour", "30", "--start", "2026-12-05"]) == 0  # fmt: skip
    now = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert not any(k.startswith("logs/2026/11/") for k in now)
    assert any(k.startswith("logs/2026/12/05/") for k in now)
    assert "ground_truth/stg_freewheel__slots.csv" in now and bigger


def test_refuses_to_write_into_a_folder_with_foreign_logs(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "real.csv.gz").write_bytes(b"not ours")
    assert b2p(["sample", "--out", str(tmp_path)]) == 1
    assert (tmp_path / "logs" / "real.csv.gz").read_bytes() == b"not ours"


@pytest.mark.parametrize(
    "arguments",
    [["--start", "2026-13-01"], ["--days", "0"], ["--slots-per-hour", "0"]],
)
def test_bad_arguments_are_user_errors(tmp_path: Path, arguments: list[str]) -> None:
    parser = argparse.ArgumentParser()
    sample_command.add_arguments(parser)
    with pytest.raises(UserError):
        sample_command.run(parser.parse_args(["--out", str(tmp_path), *arguments]))


def test_dimension_snapshots_in_the_sample_and_the_lake(sample: Path, lake: Path) -> None:
    for entity in ("sites", "site_sections", "series"):
        in_sample = pq.read_table(sample / "dimensions" / entity / f"{entity}.parquet")
        in_lake = pq.read_table(lake / "dimensions" / entity / f"{entity}.parquet")
        assert in_sample.equals(in_lake)
    names = pq.read_table(sample / "dimensions" / "sites" / "sites.parquet").to_pylist()
    assert {"site_id": 31002, "site_name": "Cuisine & Vins, Édition Spéciale"} in names
    assert any('"' in row["site_name"] for row in names)


# ---------------------------------------------------------------------------------------------
# the logs are valid and realistic


def test_every_row_is_valid_under_the_contract(logs: list[LogFile], events: list[Event]) -> None:
    for file in logs:
        names = {snake(h) for h in file.header}
        assert set(REQUIRED) <= names, file.path
        for row in file.rows:
            assert all(row[name] for name in REQUIRED), (file.path, row)
            for name in IDS:
                if row.get(name):
                    int(row[name])
            for name in ("max_slot_duration", "ad_duration"):
                if row.get(name):
                    float(row[name])
    assert len(events) > 20_000


def test_files_follow_the_hourly_layout_and_hold_their_hour(logs: list[LogFile]) -> None:
    layout = re.compile(r"logs/(\d{4})/(\d\d)/(\d\d)/(\d\d)/(\d+)_v4_(\d{10})_(\d)\.csv\.gz$")
    per_hour: Counter[str] = Counter()
    for file in logs:
        match = layout.search(file.path.as_posix())
        assert match, file.path
        year, month, day, hour, _, stamp, _ = match.groups()
        assert stamp == f"{year}{month}{day}{hour}"
        per_hour[stamp] += 1
        for row in file.rows:
            moment = dt.datetime.fromtimestamp(parse_time_ms(row["event_time"]) / 1000, dt.UTC)
            assert moment.strftime("%Y%m%d%H") == stamp
    assert max(per_hour.values()) == 2 and min(per_hour.values()) == 1


def test_file_formats_vary(logs: list[LogFile]) -> None:
    assert any(f.raw.startswith(b"\xef\xbb\xbf") for f in logs), "a file with a BOM"
    assert any(not f.raw.startswith(b"\xef\xbb\xbf") for f in logs)
    assert any(b"\r\n" in f.raw for f in logs), "a CRLF file"
    assert any(b"\r\n" not in f.raw for f in logs), "an LF file"
    assert any("transactionId" in f.header and "eventName" in f.header for f in logs)
    assert any("transaction_id" in f.header for f in logs)
    orders = {tuple(snake(h) for h in f.header if snake(h) in CONTRACT) for f in logs}
    assert len(orders) > 1, "different column orders"
    formats = {time_format(row["event_time"]) for f in logs for row in f.rows}
    assert formats == set(TIME_PATTERNS)
    per_file = [{time_format(row["event_time"]) for row in f.rows} for f in logs]
    assert all(len(kinds) == 1 for kinds in per_file), "one time format per file"
    assert any(parse_time_ms(row["event_time"]) % 1000 for f in logs for row in f.rows)


def test_free_text_columns_need_quoting(logs: list[LogFile]) -> None:
    extras = [
        value for f in logs for row in f.rows for name, value in row.items() if name not in CONTRACT
    ]
    assert extras, "columns the contract does not know"
    assert any("\n" in v for v in extras), "a quoted newline"
    assert any("," in v for v in extras), "a quoted comma"
    assert any('"' in v for v in extras), "a quoted quote"
    assert any(not set(snake(h) for h in f.header) - set(CONTRACT) for f in logs), "no extras"


def test_categorical_values_cover_every_case(unique_events: list[Event]) -> None:
    classes = {e["time_position_class"] for e in unique_events}
    canonical = {c.strip().upper() for c in classes}
    wanted = {"PREROLL", "MIDROLL", "PAUSE_MIDROLL", "POSTROLL", "OVERLAY", "DISPLAY"}
    assert wanted < canonical, "every class, and one outside the slot-type map"
    assert all(any(c != c.upper() and c.strip().upper() == w for c in classes) for w in wanted)
    sales = {e["sales_type"] for e in unique_events if e["event_name"] == "defaultImpression"}
    assert {"GUARANTEED", "PREFERRED_DEAL", "OPEN_MARKET"} <= sales
    assert {"HOUSE", "PROMO", "FILLER", "DEFAULT", "", "House"} <= sales
    names = {e["event_name"] for e in unique_events}
    assert {"firstQuartile", "midPoint", "complete", "click"} <= names
    assert any(e["series_id"] == "" for e in unique_events), "live content without a series"
    assert any(e["site_id"] == "" for e in unique_events), "traffic without a site"
    durations = {e["ad_duration"] for e in unique_events if e["event_name"] == "defaultImpression"}
    assert {"6", "15", "15.5", "30", "60", ""} <= durations


def test_duplicates_orphans_and_late_ads_occur(
    logs: list[LogFile],
    events: list[Event],
    unique_events: list[Event],
    slots: dict[tuple[str, str], dict],
) -> None:
    copies: dict[tuple[object, ...], list[Event]] = defaultdict(list)
    for event in events:
        copies[event.identity].append(event)
    duplicated = [group for group in copies.values() if len(group) > 1]
    assert any(group[0].file == group[1].file for group in duplicated), "in the same file"
    across = [group for group in duplicated if group[0].file != group[1].file]
    assert across, "in two files"
    # ingest keeps unknown columns in file order: the copies must agree on it too
    extras_order = {f.path: [snake(h) for h in f.header if snake(h) not in CONTRACT] for f in logs}
    assert all(extras_order[g[0].file] == extras_order[g[1].file] for g in across)
    assert {g[0]["event_name"] for g in duplicated} >= {"slotImpression", "defaultImpression"}

    ads = [e for e in unique_events if e["event_name"] == "defaultImpression"]
    assert any((a["transaction_id"], a["slot_id"]) not in slots for a in ads), "an orphan ad"
    slot_events = {
        (e["transaction_id"], e["slot_id"]): e
        for e in unique_events
        if e["event_name"] == "slotImpression"
    }
    late = [(slot_events[k], a) for a in ads if (k := (a["transaction_id"], a["slot_id"])) in
            slot_events and a.file.parent != slot_events[k].file.parent]  # fmt: skip
    assert late, "ads in a later hour's file than their slot"
    assert any(a.file.parts[-3] != s.file.parts[-3] for s, a in late), "ads on the next day"


def test_slot_shapes_cover_every_case(slots: dict[tuple[str, str], dict]) -> None:
    rows = list(slots.values())
    assert any(r["ad_impressions"] == 0 for r in rows), "an unsold slot"
    assert any(r["max_slot_duration"] is None for r in rows), "a slot without max duration"
    assert any(
        r["max_slot_duration"] is not None and r["delivered_seconds"] > r["max_slot_duration"]
        for r in rows
    ), "an overflowing slot"
    small = [r for r in rows if r["slot_type"] in ("overlay", "display")]
    assert small and all((r["max_slot_duration"] or 0) <= 15 for r in small)


def test_logs_use_ids_missing_from_the_dimensions(sample: Path, slots: dict) -> None:
    def ids(entity: str, column: str) -> set[str]:
        table = pq.read_table(sample / "dimensions" / entity / f"{entity}.parquet")
        return {str(v) for v in table.column(column).to_pylist()}

    for entity, column in (
        ("sites", "site_id"),
        ("site_sections", "site_section_id"),
        ("series", "series_id"),
    ):
        in_logs = {str(r[column]) for r in slots.values() if r[column]}
        assert in_logs - ids(entity, column), f"a {column} the dimension does not know"


# ---------------------------------------------------------------------------------------------
# the ground truth agrees with the files


def test_slot_ground_truth_matches_a_recomputation_from_the_files(
    sample: Path, slots: dict[tuple[str, str], dict]
) -> None:
    truth = read_truth(sample, "stg_freewheel__slots")
    assert len(truth) == len(slots)
    for row in truth:
        expected = slots[(row["transaction_id"], row["slot_id"])]
        assert set(row) == set(expected)
        for column, value in expected.items():
            assert same(value, row[column]), (row["transaction_id"], row["slot_id"], column)


def test_site_mart_matches_a_recomputation_from_the_files(
    sample: Path, slots: dict[tuple[str, str], dict]
) -> None:
    names = {
        str(r["site_id"]): r["site_name"]
        for r in pq.read_table(sample / "dimensions/sites/sites.parquet").to_pylist()
    }
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for slot in slots.values():
        groups[(slot["event_date"], slot["slot_type"], slot["site_id"])].append(slot)
    truth = read_truth(sample, "capacity_by_site")
    assert len(truth) == len(groups)
    for row in truth:
        members = groups[(row["event_date"], row["slot_type"], row["site_id"])]
        site = row["site_id"]
        expected_name = names.get(site, f"unknown site {site}") if site else "no site"
        assert row["site_name"] == expected_name
        sums = {m: sum(s[m] for s in members) for m in METRICS}
        for metric, value in sums.items():
            assert same(float(value), row[metric]), (row, metric)
        capacity = sums["capacity_seconds"]
        rate = sums["monetized_seconds"] / capacity if capacity else None
        assert same(rate, row["sell_through_rate"])
    assert any(r["site_name"].startswith("unknown site ") for r in truth)
    assert any(r["site_name"] == "no site" for r in truth)


def test_hourly_midroll_mart_matches_a_recomputation_from_the_files(
    sample: Path, slots: dict[tuple[str, str], dict]
) -> None:
    groups: dict[tuple[str, int], float] = defaultdict(float)
    for slot in slots.values():
        if slot["slot_type"] == "midroll":
            groups[(slot["event_date"], slot["event_hour"])] += slot["unsold_seconds"]
    truth = read_truth(sample, "capacity_midroll")
    assert {(r["event_date"], int(r["event_hour"])) for r in truth} == set(groups)
    for row in truth:
        assert same(groups[(row["event_date"], int(row["event_hour"]))], row["unsold_seconds"])


def test_orphan_ground_truth_matches_the_files(
    sample: Path, unique_events: list[Event], slots: dict
) -> None:
    orphans = Counter(
        (
            e["transaction_id"],
            e["slot_id"],
            dt.datetime.fromtimestamp(e.time_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[
                :-3
            ],
            number(e["ad_duration"]),
        )
        for e in unique_events
        if e["event_name"] == "defaultImpression"
        and (e["transaction_id"], e["slot_id"]) not in slots
    )
    truth = Counter(
        (r["transaction_id"], r["slot_id"], r["event_time"], number(r["ad_duration"]))
        for r in read_truth(sample, "orphan_ads")
    )
    assert truth == orphans and orphans


def test_the_generator_s_ground_truth_uses_the_seeds_definitions() -> None:
    assert truth.SLOT_TYPES == SLOT_TYPE, (
        "ingest/sample/truth.py SLOT_TYPES differs from seeds/slot_type_map.csv"
    )
    assert truth.NOT_MONETIZED == UNPAID, (
        "ingest/sample/truth.py NOT_MONETIZED differs from seeds/not_monetized_sales_types.csv"
    )
