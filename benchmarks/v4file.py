"""A large, realistic v4 log file for the ingest benchmark, generated vectorised in seconds.

One hour of one log server of a large publisher: slots with their slotImpression, each ad's
defaultImpression and quartile events, the contract columns in FreeWheel's order plus the
`user_agent` and `custom_visitor_field` extras (quoted values with commas and quotes, UTF-8,
rarely a newline inside a value), event_time as `YYYY-MM-DD HH:MM:SS.fff`. A few rows are bad on
purpose — values that are not numbers and one record with an extra field — so the benchmark
pays for the rejects path like a real file does, not just for the happy path.

`make_v4_file(path, target_bytes)` writes `<path>` (gzip) once and reuses it while its
parameters are unchanged (the name carries them), so repeated benchmark runs time the same
bytes.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.sample.files import CONTRACT_ORDER
from ingest.sample.world import USER_AGENTS

HOUR_START_MS = 1_793_520_000_000  # 2026-11-01T08:00:00Z
MS_PER_HOUR = 3_600_000
NETWORK_ID = 512_345
BYTES_PER_ROW_ESTIMATE = 260
SEED = 20261101
# bumped whenever the file's content changes, so a cached file of an older layout is not reused
GENERATOR_VERSION = 2

POSITIONS = ("PREROLL", "MIDROLL", "POSTROLL", "OVERLAY", "PAUSE_MIDROLL", "DISPLAY")
POSITION_WEIGHTS = (0.45, 0.30, 0.12, 0.07, 0.03, 0.03)
SALES_TYPES = ("GUARANTEED", "PREFERRED_DEAL", "OPEN_MARKET", "HOUSE", "PROMO", "")
SALES_WEIGHTS = (0.35, 0.15, 0.25, 0.12, 0.05, 0.08)
QUARTILES = ("firstQuartile", "midPoint", "thirdQuartile", "complete")
VISITOR_NOTES = (
    "",
    "seg=sports;tier=free",
    "genre=drama, comedy",
    'note="vip", consent=yes',
    "Ümlaut & friends, größe=L",
)
VISITOR_WEIGHTS = (0.55, 0.2, 0.1, 0.1, 0.05)
MULTILINE_NOTE = "campaign=fall\nsource=newsletter"
MULTILINE_ROWS = 3  # a newline inside a quoted value: rare, but the line numbers must stay exact
BAD_NUMBER_ROWS = 12  # `n/a` in ad_duration: rejected with its line number
# the sample generator's column order, plus the two free-text columns this file carries
HEADER = (*CONTRACT_ORDER, "user_agent", "custom_visitor_field")


@dataclass(frozen=True)
class V4File:
    path: Path
    uncompressed_bytes: int
    rows: int  # data records, bad ones included
    bad_rows: int


def make_v4_file(folder: Path, target_bytes: int, gzip_level: int = 6) -> V4File:
    """Write (or reuse) a gzip v4 file of at least `target_bytes` uncompressed CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"network_v4_{target_bytes // 1_000_000}mb_s{SEED}_l{gzip_level}_g{GENERATOR_VERSION}"
    path = folder / f"{name}.csv.gz"
    meta = path.with_suffix(".meta")
    if path.exists() and meta.exists():
        uncompressed, rows, bad = (int(part) for part in meta.read_text().split())
        return V4File(path, uncompressed, rows, bad)
    csv_bytes, rows, bad = v4_csv_bytes(target_bytes)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        handle.write(gzip.compress(csv_bytes, compresslevel=gzip_level, mtime=0))
    partial.replace(path)
    meta.write_text(f"{len(csv_bytes)} {rows} {bad}\n")
    return V4File(path, len(csv_bytes), rows, bad)


def v4_csv_bytes(target_bytes: int) -> tuple[bytes, int, int]:
    """(CSV bytes with header, data records, bad records) of about `target_bytes` or more."""
    rng = np.random.default_rng(SEED)
    table = _events(rng, int(target_bytes / BYTES_PER_ROW_ESTIMATE * 1.05) + 1)
    table = _spoil_numbers(rng, table)
    data = _with_extra_field_record(_csv_bytes(table))
    return data, table.num_rows + 1, BAD_NUMBER_ROWS + 1


def _events(rng: np.random.Generator, approx_rows: int) -> pa.Table:
    # a slot: one slotImpression, 0-4 ads, each ad a defaultImpression and 0-4 quartile events
    slots = approx_rows // 9
    ads_per_slot = rng.choice(5, size=slots, p=(0.05, 0.2, 0.35, 0.25, 0.15))
    ads = int(ads_per_slot.sum())
    quartiles_per_ad = rng.choice(5, size=ads, p=(0.05, 0.05, 0.1, 0.2, 0.6))
    ad_slot = np.repeat(np.arange(slots), ads_per_slot)
    ad_rows = 1 + quartiles_per_ad
    row_slot = np.concatenate([np.arange(slots), np.repeat(ad_slot, ad_rows)])
    row_ad = np.concatenate([np.full(slots, -1), np.repeat(np.arange(ads), ad_rows)])
    # event code per row: -1 slotImpression, 0 defaultImpression, 1-4 the quartiles
    row_quartile = np.concatenate([np.full(slots, -1), _position_in_run(ad_rows) - 1])
    order = np.lexsort((row_quartile, row_ad, row_slot))
    row_slot, row_ad, row_quartile = row_slot[order], row_ad[order], row_quartile[order]
    is_slot = row_quartile == -1
    is_ad = ~is_slot

    transactions = slots // 2 + 1
    slot_transaction = np.sort(rng.integers(0, transactions, slots))
    slot_number = _position_in_run(np.bincount(slot_transaction, minlength=transactions))
    slot_start = rng.integers(0, MS_PER_HOUR - 300_000, slots)
    ad_offset = rng.integers(0, 120_000, ads)
    site = rng.integers(1, 400, slots)
    position = rng.choice(len(POSITIONS), size=slots, p=POSITION_WEIGHTS)
    visitor_agent = rng.integers(0, len(USER_AGENTS), slots)
    visitor_note = rng.choice(len(VISITOR_NOTES), size=slots, p=VISITOR_WEIGHTS)
    ad_id = rng.integers(10_000, 90_000, ads)
    sales = rng.choice(len(SALES_TYPES), size=ads, p=SALES_WEIGHTS)
    capacity = rng.choice(np.array([15.0, 30.0, 60.0, 90.0, 120.0]), size=slots)
    duration = rng.choice(np.array([6.0, 10.0, 15.0, 20.0, 30.0, 14.98]), size=ads)

    ad_of_row = np.where(is_ad, row_ad, 0)
    time_ms = (
        HOUR_START_MS
        + slot_start[row_slot]
        + np.where(is_ad, ad_offset[ad_of_row] + np.maximum(row_quartile, 0) * 3_750, 0)
    )
    tx = slot_transaction[row_slot]
    notes = np.array(VISITOR_NOTES, dtype=object)[visitor_note[row_slot]]
    notes[rng.choice(len(notes), MULTILINE_ROWS, replace=False)] = MULTILINE_NOTE
    event_names = np.array(("slotImpression", "defaultImpression", *QUARTILES), dtype=object)
    return pa.table(
        {
            "transaction_id": _text_ids(tx, "1793520000-", 16),
            "event_name": pa.array(event_names[row_quartile + 1], pa.string()),
            "event_time": pc.strftime(
                pa.array(time_ms, pa.timestamp("ms")), format="%Y-%m-%d %H:%M:%S"
            ),
            "network_id": pa.array(np.full(len(row_slot), NETWORK_ID)),
            "site_id": pa.array(site[row_slot]),
            "site_section_id": pa.array(site[row_slot] * 10 + row_slot % 7),
            "series_id": pa.array(np.where(row_slot % 5 == 0, 0, 7000 + row_slot % 900)),
            "video_asset_id": pa.array(row_slot % 250_000 + 1_000_000),
            "slot_id": pc.binary_join_element_wise(
                "slot_", pc.cast(pa.array(slot_number[row_slot]), pa.string()), ""
            ),
            "time_position_class": pa.array(np.array(POSITIONS, dtype=object)[position[row_slot]]),
            "max_slot_duration": pa.array(capacity[row_slot], mask=is_ad),
            "ad_id": pa.array(ad_id[ad_of_row], mask=is_slot),
            "creative_id": pa.array(ad_id[ad_of_row] * 3 + 1, mask=is_slot),
            "ad_duration": pa.array(duration[ad_of_row], mask=is_slot),
            "sales_type": pa.array(
                np.array(SALES_TYPES, dtype=object)[sales[ad_of_row]], mask=is_slot
            ),
            "event_type": pa.array(np.full(len(row_slot), "i", dtype=object), pa.string()),
            "placement_id": pa.array(610_000 + sales[ad_of_row] * 100, mask=is_slot),
            "ad_unit_id": pa.array(7_000_001 + position[row_slot]),
            "user_agent": pa.array(np.array(USER_AGENTS, dtype=object)[visitor_agent[row_slot]]),
            "custom_visitor_field": pa.array(notes, pa.string()),
        }
    ).select(list(HEADER))


def _csv_bytes(table: pa.Table) -> bytes:
    """RFC 4180 like FreeWheel writes it: a value is quoted only when it has to be."""
    fields = [_csv_field(table.column(name).combine_chunks()) for name in table.column_names]
    lines = pc.binary_join_element_wise(*fields, ",")
    lines = pc.binary_join_element_wise(lines, "\n", "")
    body = pa.concat_arrays([lines]).buffers()[2].to_pybytes()
    return (",".join(table.column_names) + "\n").encode() + body[: _text_length(lines)]


def _text_length(lines: pa.Array) -> int:
    return int(pc.sum(pc.binary_length(lines)).as_py())


def _csv_field(values: pa.Array) -> pa.Array:
    text = pc.fill_null(pc.cast(values, pa.string()), "")
    if not pa.types.is_string(values.type):
        return text
    needs_quotes = pc.match_substring_regex(text, '[,"\n\r]')
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs_quotes, quoted, text)


def _position_in_run(lengths: np.ndarray) -> np.ndarray:
    """1, 2, …, n for each run length n, concatenated."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(int(lengths.sum())) - starts + 1


def _text_ids(numbers: np.ndarray, prefix: str, width: int) -> pa.Array:
    scrambled = (numbers.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(12)
    digits = pc.utf8_lpad(pc.cast(pa.array(scrambled), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _spoil_numbers(rng: np.random.Generator, table: pa.Table) -> pa.Table:
    index = table.schema.get_field_index("ad_duration")
    text = pc.cast(table.column(index), pa.string()).combine_chunks()
    bad = np.zeros(len(text), dtype=bool)
    bad[rng.choice(len(text), BAD_NUMBER_ROWS, replace=False)] = True
    spoiled = pc.if_else(pa.array(bad), pa.scalar("n/a"), text)
    return table.set_column(index, "ad_duration", spoiled)


def _with_extra_field_record(data: bytes) -> bytes:
    """Insert one record with one field too many after the middle of the file."""
    middle = data.index(b"\n", len(data) // 2) + 1
    line_end = data.index(b"\n", middle) + 1
    record = data[middle : line_end - 1] + b",surplus\n"
    return data[:middle] + record + data[middle:]
