"""`b2p sample`: realistic synthetic FreeWheel v4 logs, dimension snapshots and their ground truth.

    <out>/logs/YYYY/MM/DD/HH/<network>_v4_<YYYYMMDDHH>_<n>.csv.gz   the logs (README)
    <out>/dimensions/{sites,site_sections,series}/*.parquet         names, with gaps on purpose
    <out>/ground_truth/<model>.csv                                  what every mart must contain
    <out>/sample_manifest.json                                      arguments and files written

`--vocabulary field` writes the same kind of traffic in the vocabulary of publishers' stored v4
tables instead of the contract's (`ingest.sample.field`), plus what such a delivery comes with:

    <out>/names/<entity>.csv           companion name files (id,name), for --from-files
    <out>/house_placements.csv         the publisher's house placements, for the seed

The generator makes slots and ads in memory (`ingest.sample.world`), writes them as log files
(`ingest.sample.files`) and computes the marts from the same objects (`ingest.sample.truth`),
never from the files. The same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from dataclasses import dataclass

import pyarrow as pa

from ingest.errors import UserError
from ingest.names.snapshots import write_snapshot
from ingest.sample import field
from ingest.sample.files import HourPlans, WrittenLogs, plan_hours, write_events, write_logs
from ingest.sample.truth import Table, ground_truth, to_csv
from ingest.sample.world import MS_PER_HOUR, Catalogue, Slot, build_catalogue, generate_slots
from ingest.storage import Storage, open_storage

MANIFEST_KEY = "sample_manifest.json"
MAX_DAYS = 62
VOCABULARIES = ("contract", "field")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder (or s3:// prefix) to write into")
    parser.add_argument(
        "--start", default="2026-11-01", help="first day, YYYY-MM-DD (UTC; default %(default)s)"
    )
    parser.add_argument("--days", type=int, default=2, help="days of traffic (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    parser.add_argument(
        "--slots-per-hour",
        type=int,
        default=200,
        help="slots started per hour, roughly (default %(default)s)",
    )
    parser.add_argument(
        "--lake", help="also write the dimension snapshots into this lake (folder or s3://)"
    )
    parser.add_argument(
        "--vocabulary",
        choices=VOCABULARIES,
        default="contract",
        help="contract: the log contract's column names (default); field: the names, formats "
        "and companion name files of publishers' stored v4 tables (needs `b2p inspect`)",
    )


@dataclass(frozen=True)
class SampleOptions:
    start: dt.date
    days: int
    seed: int
    slots_per_hour: int
    vocabulary: str = "contract"

    @property
    def start_ms(self) -> int:
        midnight = dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)
        return int(midnight.timestamp()) * 1000


def parse_options(args: argparse.Namespace) -> SampleOptions:
    try:
        start = dt.date.fromisoformat(args.start)
    except ValueError as exc:
        raise UserError(f"--start {args.start!r} is not a date; use YYYY-MM-DD") from exc
    if not 1 <= args.days <= MAX_DAYS:
        raise UserError(f"--days must be between 1 and {MAX_DAYS}, not {args.days}")
    if args.slots_per_hour < 1:
        raise UserError(f"--slots-per-hour must be at least 1, not {args.slots_per_hour}")
    return SampleOptions(start, args.days, args.seed, args.slots_per_hour, args.vocabulary)


@dataclass(frozen=True)
class Sample:
    catalogue: Catalogue
    files: dict[str, bytes]  # key under --out -> content
    events: int
    duplicates: int
    slots: int
    orphan_ads: int


def generate(options: SampleOptions) -> Sample:
    """Everything a sample consists of, in memory; a pure function of the options."""
    # Independent streams, so a change in one part does not reshuffle the others.
    seed = options.seed

    def stream(name: str) -> random.Random:
        return random.Random(f"{seed}/{name}")

    first_hour = options.start_ms // MS_PER_HOUR
    # one more day of plans: breaks late on the last day log their ads after it
    planner = field.field_plan_hours if options.vocabulary == "field" else plan_hours
    plans: HourPlans = planner(stream("files"), first_hour, (options.days + 1) * 24)
    catalogue = build_catalogue(stream("catalogue"))
    slots = generate_slots(
        stream("traffic"),
        catalogue,
        options.start_ms,
        options.days,
        options.slots_per_hour,
        plans.quantize,
    )
    if options.vocabulary == "field":
        catalogue, logs, truth, files = _field_delivery(
            stream("duplicates"), slots, catalogue, plans
        )
    else:
        logs = write_logs(stream("duplicates"), slots, plans)
        truth = ground_truth(slots, catalogue)
        files = dict(logs.files)
    for name, table in truth.items():
        files[f"ground_truth/{name}.csv"] = to_csv(table)
    return Sample(
        catalogue=catalogue,
        files=files,
        events=logs.events,
        duplicates=logs.duplicates,
        slots=len(truth["stg_freewheel__slots"].rows),
        orphan_ads=len(truth["orphan_ads"].rows),
    )


def _field_delivery(
    rng: random.Random, slots: list[Slot], catalogue: Catalogue, plans: HourPlans
) -> tuple[Catalogue, WrittenLogs, dict[str, Table], dict[str, bytes]]:
    """The logs, companion files, house placements and truth of the field vocabulary."""
    view = field.FieldView(slots)
    named = field.field_catalogue(catalogue)
    logs = write_events(rng, view.events(slots), plans)
    house = frozenset(field.house_placements(catalogue))
    truth = ground_truth(view.logged_slots(slots), named, house)
    files = {
        **logs.files,
        **field.companion_files(named),
        "house_placements.csv": field.house_placements_csv(catalogue),
    }
    return named, logs, truth, files


def dimension_tables(catalogue: Catalogue) -> dict[str, pa.Table]:
    """The names the publisher API knows; the ids left out show up as 'unknown …' in the marts."""
    sites = [s for s in catalogue.sites if s.in_dimension]
    sections = [s for s in catalogue.site_sections if s.in_dimension]
    series = [s for s in catalogue.series if s.in_dimension]
    return {
        "sites": pa.table(
            {"site_id": [s.site_id for s in sites], "site_name": [s.name for s in sites]}
        ),
        "site_sections": pa.table(
            {
                "site_section_id": [s.site_section_id for s in sections],
                "site_section_name": [s.name for s in sections],
                "site_id": [s.site_id for s in sections],
            }
        ),
        "series": pa.table(
            {"series_id": [s.series_id for s in series], "series_name": [s.name for s in series]}
        ),
    }


def previous_files(storage: Storage) -> list[str]:
    """What an earlier sample in the same place wrote; refuse to write over anything else."""
    if storage.exists(MANIFEST_KEY):
        try:
            manifest = json.loads(storage.read_bytes(MANIFEST_KEY))
            return [str(key) for key in manifest["files"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"{storage.uri(MANIFEST_KEY)} is not a b2p sample manifest; "
                "remove it or choose an empty folder for --out"
            ) from exc
    if any(True for _ in storage.list("logs")) or any(True for _ in storage.list("ground_truth")):
        raise UserError(
            f"{storage.uri('')} already has logs/ or ground_truth/ that b2p sample did not write; "
            "choose an empty folder for --out"
        )
    return []


def write_sample(
    storage: Storage, sample: Sample, options: SampleOptions, earlier: list[str]
) -> None:
    """Write the files, then remove what an earlier sample wrote there and this one did not."""
    for key, content in sample.files.items():
        storage.write_bytes(key, content)
    dimension_keys = [
        write_snapshot(storage, entity, table)
        for entity, table in dimension_tables(sample.catalogue).items()
    ]
    written = sorted([*sample.files, *dimension_keys])
    manifest = {
        "generator": "b2p sample",
        "arguments": {
            "start": options.start.isoformat(),
            "days": options.days,
            "seed": options.seed,
            "slots_per_hour": options.slots_per_hour,
            "vocabulary": options.vocabulary,
        },
        "files": written,
    }
    storage.write_bytes(MANIFEST_KEY, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    for stale in sorted(set(earlier) - set(written)):
        storage.delete(stale)


def run(args: argparse.Namespace) -> int:
    options = parse_options(args)
    storage = open_storage(args.out)
    earlier = previous_files(storage)
    sample = generate(options)
    write_sample(storage, sample, options, earlier)
    if args.lake:
        lake = open_storage(args.lake)
        for entity, table in dimension_tables(sample.catalogue).items():
            write_snapshot(lake, entity, table)
    log_files = [key for key in sample.files if key.startswith("logs/")]
    end = options.start + dt.timedelta(days=options.days - 1)
    print(
        f"b2p sample: {options.start} to {end} (seed {options.seed}): "
        f"{len(log_files)} log files, {sample.events} events "
        f"({sample.duplicates} duplicated), {sample.slots} slots, {sample.orphan_ads} orphan ads"
    )
    print(f"  logs          {storage.uri('logs')}")
    print(f"  ground truth  {storage.uri('ground_truth')}")
    print(f"  dimensions    {storage.uri('dimensions')}")
    if options.vocabulary == "field":
        print(f"  name files    {storage.uri('names')}")
        print(f"  house list    {storage.uri('house_placements.csv')}")
    if args.lake:
        print(f"  dimensions    {open_storage(args.lake).uri('dimensions')} (lake)")
    return 0
