"""`b2p sample --vocabulary field`: the files look like publishers' stored v4 tables, read back
here with csv/gzip only, and the sample is deterministic."""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from pathlib import Path

import pytest

from ingest.sample.field import FIELD_COLUMNS
from tests.support import samples


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.field_sample(tmp_path_factory.mktemp("field"), seed=5)


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def read(path: Path) -> tuple[list[str], str, list[dict[str, str]]]:
    text = gzip.decompress(path.read_bytes()).decode("utf-8-sig")
    delimiter = max(",\t;", key=text.split("\n", 1)[0].count)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    names = [snake(h) for h in records[0]]
    return records[0], delimiter, [dict(zip(names, r, strict=True)) for r in records[1:]]


@pytest.fixture(scope="module")
def files(sample: Path) -> list[tuple[list[str], str, list[dict[str, str]]]]:
    return [read(path) for path in sorted((sample / "logs").rglob("*.csv.gz"))]


def test_headers_are_snake_or_pascal_case_and_files_use_three_delimiters(files) -> None:
    styles = Counter(
        "pascal" if header[0] == "TransactionId" else "snake" for header, _, _ in files
    )
    assert styles["pascal"] and styles["snake"]
    assert {delimiter for _, delimiter, _ in files} == {",", "\t", ";"}
    for header, _, _ in files:
        assert sorted(snake(h) for h in header) == sorted(FIELD_COLUMNS)
        assert not {"series_id", "network_id", "slot_id", "sales_type"} & {snake(h) for h in header}


def test_values_use_the_field_vocabulary(files) -> None:
    rows = [row for _, _, file_rows in files for row in file_rows]
    assert all(re.fullmatch(r"\d{14}", r["event_time"]) for r in rows)
    assert all(re.fullmatch(r"\d{19}-a\d{3}", r["transaction_id"]) for r in rows)
    names = Counter(r["event_name"] for r in rows)
    assert {"slotImpression", "slotimpression", "defaultImpression", "defaultimpression"} <= set(
        names
    )
    assert {r["event_type"] for r in rows} == {"i", "c"}
    assert {r["time_position_class"] for r in rows} >= {"preroll", "midroll", "overlay", "Unknown"}
    assert {r["sales_channel_type"] for r in rows} == {"Direct Sold", "Reseller Sold", ""}
    slots = [r for r in rows if r["event_name"].lower() == "slotimpression"]
    assert {r["ad_id"] for r in slots} == {"-1", ""}  # no ad on a slot row: -1 or empty
    ads = [r for r in rows if r["event_name"].lower() == "defaultimpression"]
    # the slot's maximum, repeated on its ads (found by global_slot_index)
    maximum = {(r["transaction_id"], r["global_slot_index"]): r["max_duration"] for r in slots}
    found = [r for r in ads if (r["transaction_id"], r["global_slot_index"]) in maximum]
    assert len(found) > 0.9 * len(ads) and any(r["max_duration"] for r in found)
    assert all(
        r["max_duration"] == maximum[r["transaction_id"], r["global_slot_index"]] for r in found
    )
    assert any("," in r["all_request_kv"] and '"' in r["all_request_kv"] for r in rows)


def test_house_placements_are_booked_as_direct_sales(sample: Path, files) -> None:
    house = set((sample / "house_placements.csv").read_text().split()[1:])
    rows = [row for _, _, file_rows in files for row in file_rows]
    on_house = {r["sales_channel_type"] for r in rows if r["placement_id"] in house}
    assert house and on_house == {"Direct Sold"}


def test_companion_files_name_ids_and_sections_hold_their_path(sample: Path) -> None:
    names = {p.stem for p in (sample / "names").glob("*.csv")}
    assert names == {"site", "site_section", "series", "placement", "video_asset", "network"}
    sections = list(csv.reader((sample / "names" / "site_section.csv").open(encoding="utf-8")))
    assert sections[0] == ["id", "name"]
    assert all("|" in name for _, name in sections[1:])


def test_the_same_seed_gives_the_same_bytes(sample: Path, tmp_path: Path) -> None:
    samples.field_sample(tmp_path, seed=5)
    for path in sorted(sample.rglob("*")):
        if path.is_file() and path.name != "sample_manifest.json":
            assert (tmp_path / path.relative_to(sample)).read_bytes() == path.read_bytes(), path
