"""The parallel reader gives what the serial one gives: `b2p ingest --threads N` vs 1.

Each file is ingested three ways: one thread with blocks larger than the file (one piece, the
reference), one thread with small blocks, and several threads with the same small blocks (many
pieces in flight, so pieces finish out of order and some are pushed back). The lake rows (in
order, every column but `ingested_at`), the rejects (line, lines, column, reason) and the counts
of the log record must be the same for all three.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ingest.logs.attempt import ingest_object
from ingest.logs.contract import FeedMapping
from ingest.logs.records import RecordLimits
from ingest.sample.command import SampleOptions, generate
from ingest.storage import LocalStorage
from tests.support.v4files import event_files, read_rows, rejects, write_log

SMALL_BLOCK = 1024
WHOLE_FILE = 64 << 20
THREADS = 3
COUNTS = (
    "status",
    "lines_read",
    "header_lines",
    "rows_read",
    "lines_written",
    "lines_rejected",
    "lines_skipped",
    "repeated_headers",
    "rows_written",
    "rows_rejected",
)
HEADER = "transaction_id,event_name,event_time,slot_id,time_position_class,site_id,ad_duration"
SMALL_LIMITS = RecordLimits(max_record_bytes=600, max_field_bytes=400, max_record_lines=12)
# the mapping `b2p inspect` writes for the field vocabulary (tests/ingest/inspect checks it)
FIELD_MAPPING = FeedMapping(
    aliases={
        "max_duration": "max_slot_duration",
        "sales_channel_type": "sales_type",
        "global_slot_index": "slot_id",
    },
    null_id_values=("-1",),
)
MAPPINGS = {"contract": FeedMapping(), "field": FIELD_MAPPING}


def ingest_to(
    source: Path, lake: Path, block_bytes: int, threads: int, reading: Reading
) -> dict[str, Any]:
    """Ingest every file under `source`; what each run put in the lake, ingest time aside."""
    storage, lake_storage = LocalStorage(source), LocalStorage(lake)
    counts = []
    for info in sorted(storage.list(), key=lambda info: info.key):
        result = ingest_object(
            storage,
            info.key,
            info.etag,
            lake_storage,
            size=info.size,
            aliases=reading.mapping,
            limits=reading.limits,
            block_bytes=block_bytes,
            threads=threads,
        )
        record = vars(result)
        counts.append({name: record.get(name) for name in COUNTS})
    rows = {
        key: [{k: v for k, v in row.items() if k != "ingested_at"} for row in read_rows(lake, key)]
        for key in event_files(lake)
    }
    return {"counts": counts, "rows": rows, "rejects": [_reject(r) for r in rejects(lake)]}


def _reject(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(name) for name in ("line", "lines", "column", "reason", "values"))


@dataclass(frozen=True)
class Reading:
    mapping: FeedMapping = field(default_factory=FeedMapping)
    limits: RecordLimits = field(default_factory=RecordLimits)


def assert_same_for_any_threads(source: Path, tmp_path: Path, reading: Reading) -> dict[str, Any]:
    reference = ingest_to(source, tmp_path / "whole", WHOLE_FILE, 1, reading)
    serial = ingest_to(source, tmp_path / "serial", SMALL_BLOCK, 1, reading)
    parallel = ingest_to(source, tmp_path / "parallel", SMALL_BLOCK, THREADS, reading)
    assert serial == reference
    assert parallel == serial
    return parallel


@pytest.mark.parametrize("vocabulary", ["contract", "field"])
def test_every_sample_case_reads_the_same_on_several_threads(
    vocabulary: str, tmp_path: Path
) -> None:
    options = SampleOptions(dt.date(2024, 6, 1), 1, 11, 12, vocabulary)
    source = tmp_path / "source"
    for key, content in generate(options).files.items():
        if key.endswith(".csv.gz"):
            (source / key).parent.mkdir(parents=True, exist_ok=True)
            (source / key).write_bytes(content)
    sizes = [len(gzip.decompress(path.read_bytes())) for path in source.rglob("*.csv.gz")]
    assert max(sizes) > 8 * SMALL_BLOCK  # many pieces per file, more than the threads

    out = assert_same_for_any_threads(source, tmp_path, Reading(MAPPINGS[vocabulary]))

    assert all(count["status"] == "ok" for count in out["counts"])
    assert sum(len(rows) for rows in out["rows"].values()) > 1000
    lines = [row["source_line"] for rows in out["rows"].values() for row in rows]
    assert min(lines) == 2  # the first record after the header


@dataclass
class HostileFile:
    """A file with every hard case between ordinary rows, and what the reader must make of it."""

    records: list[str] = field(default_factory=lambda: [HEADER + ",note"])
    starts: dict[str, int] = field(default_factory=dict)  # transaction -> its first line
    rejected: dict[int, str] = field(default_factory=dict)  # first line -> why
    notes: dict[str, str] = field(default_factory=dict)  # transaction -> its multi-line note

    @property
    def text(self) -> str:
        return "\n".join(self.records) + "\n"


CONTRACT_COLUMN_QUOTES = range(1102, 1300, 20)


def hostile_file(rng: random.Random) -> HostileFile:
    made = HostileFile()
    starts, rejected = made.starts, made.rejected
    line = 2  # of the next record: the header is line 1

    def add(text: str, reject: str | None = None) -> None:
        nonlocal line
        starts.setdefault(text.split(",", 1)[0], line)
        if reject:
            rejected[line] = reject
        made.records.append(text)
        line += text.count("\n") + 1

    for index in range(2400):
        when = 1717243200 + index * 7
        kind = index % 40
        if index in (702, 1302, 1502, 1700, 2102):  # a quote never closed: wrong parity after it
            # 1700's is closed by the opening quote of 1701's value: one record of two lines
            reject = None if index == 1700 else "unclosed"
            add(f't{index},slotImpression,{when},s1,PREROLL,1,,"never closed', reject)
        elif index in CONTRACT_COLUMN_QUOTES:  # the same in a column that holds no line breaks
            add(f't{index},slotImpression,{when},"s1,PREROLL,1,,x', "unclosed")
        elif index in (300, 1900):
            add(f"t{index},slotImpression,{when},s1,PREROLL,1,,{'y' * 900}", "too long")
        elif kind in (3, 9, 21) or index - 1 in CONTRACT_COLUMN_QUOTES:
            # a value over several lines, likely to straddle a piece's end; after a quote
            # opened in a contract column the quote parity puts a piece's end inside one, and
            # the pieces already cut after it go back to the cutter
            middle = 'middle, ""quoted"" words\n' * rng.randrange(1, 4)
            first = line
            add(f't{index},slotImpression,{when},s1,PREROLL,1,,"first\n{middle}last"')
            if index == 1701:  # its opening quote closes 1700's value: its other lines are broken
                rejected.update(dict.fromkeys(range(first + 1, line), "broken record"))
            else:
                made.notes[f"t{index}"] = "first\n" + middle.replace('""', '"') + "last"
        elif kind == 7:
            add(f"t{index},slotImpression,not-a-time,s1,PREROLL,1,,x", "invalid event_time")
        elif kind == 11:
            add(f"t{index},slotImpression,{when},s1,PREROLL,1", "too few fields")
        elif kind == 17:
            add(HEADER + ",note")  # a repeated header, skipped
        elif kind == 19:
            add(f"t{index},defaultImpression,{when},s1,MIDROLL,x1,15,z", "invalid site_id")
        else:
            add(f"t{index},slotImpression,{when},s1,MIDROLL,{index % 5},,plain {index}")
    return made


def test_hard_cases_read_the_same_on_several_threads(tmp_path: Path) -> None:
    made = hostile_file(random.Random(5))
    text = made.text
    source = tmp_path / "source"
    write_log(source / "hostile.csv.gz", text)
    write_log(source / "hostile_crlf.csv.gz", text.replace("\n", "\r\n"))
    assert len(text) > 20 * SMALL_BLOCK

    out = assert_same_for_any_threads(source, tmp_path, Reading(limits=SMALL_LIMITS))

    # every row on the line the generator put it on, the multi-line values whole
    for rows in out["rows"].values():
        for row in rows:
            assert row["source_line"] == made.starts[row["transaction_id"]]
    notes = {
        row["transaction_id"]: json.loads(row["extra_columns"])["note"]
        for rows in out["rows"].values()
        for row in rows
        if row["transaction_id"] in made.notes and row["source_file"].endswith("/hostile.csv.gz")
    }
    assert notes == made.notes
    assert {line for line, *_ in out["rejects"]} == set(made.rejected)
