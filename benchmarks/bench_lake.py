"""The dbt benchmark's lakes: 30 or 90 days at 10x the sample's old density, built in a minute.

`b2p sample` makes ~7,500 events a second and allows at most 62 days, so 20-60 M events through
it would take most of an hour. Instead:

1. a template: `b2p sample --days 2 --slots-per-hour 4000` (1.35 M events, every case the
   generator makes: duplicates, orphan ads, late ads after midnight, names missing from the
   dimensions), ingested by `b2p ingest` into a lake of its own: the real writer, layout and
   schema;
2. the benchmark lake: every Parquet file of the template, rewritten once per 2-day block of the
   requested history, its event_time moved by the block's offset (so its event_date/event_hour
   partition too) and its transaction_id prefixed by the block (`b07-…`), so slots of different
   blocks never meet; written with the ingester's own Parquet settings
   (`ingest.logs.writers`);
3. the ground truth: the template's `ground_truth/*.csv` (computed by the generator from its own
   objects, never from the files), each block's copy moved by the same offset (`truth_sql`).

The last hour of traffic (event hours from `END` 23:00 on, which includes the late ads of that
hour's slots after midnight) is written to `held_back/`, not to the lake: the benchmark lands it
after the full build. Everything is cached under `.bench/` until the arguments change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.logs.contract import LAKE_SCHEMA
from ingest.logs.writers import DICTIONARY_COLUMNS, ROW_GROUP_ROWS

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
BIN = Path(sys.executable).parent
TEMPLATE_START = dt.date(2026, 11, 1)
TEMPLATE_DAYS = 2
# 10x the 400 slots an hour of the earlier 30-day benchmark (2 M events in 30 days)
SLOTS_PER_HOUR = 4000
# Every lake ends on this day: a fixed day in the past, so that a lake stays valid in the cache
# and the lookback window (anchored on the newest day built, capped at today) is the same on
# every machine.
END = dt.date(2026, 11, 30)
LAYOUT_VERSION = 1


def _fingerprint() -> str:
    """Of what a cached template and lake depend on beyond this file: the generator's code, the
    lake schema and the writer's settings. A change of any makes new cache folders."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "ingest" / "sample").glob("*.py")):
        digest.update(path.read_bytes())
    digest.update(f"{LAKE_SCHEMA}|{ROW_GROUP_ROWS}|{DICTIONARY_COLUMNS}".encode())
    return digest.hexdigest()[:10]


TEMPLATE = CACHE / f"dbt-template-{TEMPLATE_DAYS}d-{SLOTS_PER_HOUR}sph-{_fingerprint()}"


@dataclass(frozen=True)
class BenchLake:
    folder: Path
    days: int
    start: dt.date
    events: int  # in the lake and held_back/ together

    @property
    def lake(self) -> Path:
        return self.folder / "lake"

    @property
    def held_back(self) -> Path:
        return self.folder / "held_back"

    def block_offsets(self) -> list[int]:
        """Days each block is moved by from the template's dates."""
        first = (self.start - TEMPLATE_START).days
        return [first + TEMPLATE_DAYS * block for block in range(self.days // TEMPLATE_DAYS)]

    def truth_sql(self, model: str) -> str:
        """A DuckDB query of the ground truth of `model` (a ground_truth/*.csv) for this lake."""
        path = TEMPLATE / "sample" / "ground_truth" / f"{model}.csv"
        offsets = ", ".join(str(offset) for offset in self.block_offsets())
        return (
            f"select truth.* replace (cast(truth.event_date + blocks.offset_days as date)"
            f" as event_date) from read_csv('{path}', header = true, auto_detect = true)"
            f" as truth cross join (select unnest([{offsets}]) as offset_days) as blocks"
        )

    def land_held_back(self, lake: Path) -> list[str]:
        """Hard-link (or copy) the held-back hour into `lake`; the event_dates it touched."""
        days: set[str] = set()
        for path in sorted(self.held_back.rglob("*.parquet")):
            relative = path.relative_to(self.held_back)
            target = lake / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(path, target)
            days.add(relative.parts[1].removeprefix("event_date="))
        return sorted(days)


def bench_lake(days: int) -> BenchLake:
    if days % TEMPLATE_DAYS:
        raise ValueError(f"days must be a multiple of {TEMPLATE_DAYS}, not {days}")
    folder = CACHE / f"dbt-lake-{days}d-{SLOTS_PER_HOUR}sph-v{LAYOUT_VERSION}-{_fingerprint()}"
    start = END - dt.timedelta(days=days - 1)
    manifest = folder / "bench_lake.json"
    if manifest.exists():
        return BenchLake(folder, days, start, json.loads(manifest.read_text())["events"])
    shutil.rmtree(folder, ignore_errors=True)
    lake = BenchLake(folder, days, start, 0)
    template_lake = _template(TEMPLATE)
    events = _replicate(template_lake, lake)
    shutil.copytree(template_lake / "dimensions", lake.lake / "dimensions")
    manifest.write_text(json.dumps({"days": days, "start": start.isoformat(), "events": events}))
    return BenchLake(folder, days, start, events)


def _template(folder: Path) -> Path:
    lake = folder / "lake"
    done = folder / "done"
    if done.exists():
        return lake
    shutil.rmtree(folder, ignore_errors=True)
    sample = folder / "sample"
    command = [str(BIN / "b2p"), "sample", "--out", str(sample), "--lake", str(lake)]
    command += ["--start", TEMPLATE_START.isoformat(), "--days", str(TEMPLATE_DAYS)]
    command += ["--slots-per-hour", str(SLOTS_PER_HOUR)]
    subprocess.run(command, check=True, capture_output=True)
    command = [str(BIN / "b2p"), "ingest", "--source", str(sample / "logs"), "--lake", str(lake)]
    ingest = subprocess.run(command, check=False, capture_output=True, text=True)
    if ingest.returncode not in (0, 2):  # 2: rows rejected (the sample has some)
        raise RuntimeError(f"b2p ingest of the template failed:\n{ingest.stderr[-3000:]}")
    done.write_text("")
    return lake


def _replicate(template_lake: Path, lake: BenchLake) -> int:
    held_back_from = dt.datetime.combine(END, dt.time(23))
    files = sorted((template_lake / "v4_events").rglob("*.parquet"))

    def rewrite(path: Path) -> int:
        table = pq.read_table(path, schema=LAKE_SCHEMA)
        day = dt.date.fromisoformat(path.parent.parent.name.removeprefix("event_date="))
        hour = int(path.parent.name.removeprefix("event_hour="))
        rows = 0
        for block, offset in enumerate(lake.block_offsets()):
            moved = dt.datetime.combine(day + dt.timedelta(days=offset), dt.time(hour))
            root = lake.held_back if moved >= held_back_from else lake.lake
            target = root / "v4_events" / f"event_date={moved.date()}" / f"event_hour={hour}"
            target.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                _moved(table, block, offset),
                target / f"b{block:02d}-{path.name}",
                compression="zstd",
                use_dictionary=list(DICTIONARY_COLUMNS),
                row_group_size=ROW_GROUP_ROWS,
            )
            rows += table.num_rows
        return rows

    with ThreadPoolExecutor(max_workers=2) as pool:
        return sum(pool.map(rewrite, files))


def _moved(table: pa.Table, block: int, offset_days: int) -> pa.Table:
    shift = pa.scalar(dt.timedelta(days=offset_days), pa.duration("ms"))
    prefix = pa.scalar(f"b{block:02d}-")
    columns = {
        "transaction_id": pc.binary_join_element_wise(prefix, table["transaction_id"], ""),
        "event_time": pc.add(table["event_time"], shift),
    }
    for name, column in columns.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(index), column)
    return table


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def link_tree(source: Path, target: Path) -> None:
    """A copy of `source` made of hard links (files are never modified, only added)."""
    shutil.copytree(source, target, copy_function=_link_or_copy, dirs_exist_ok=True)
