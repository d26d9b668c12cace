"""Peak memory of `b2p ingest` on one large file: `python -m benchmarks.ingest_memory`.

Streams a gzip v4 file of at least `--gigabytes` uncompressed (synthetic slot/ad rows spread over
six hours), ingests it in a subprocess with one worker into a local lake, and prints the
child's peak RSS and CPU-seconds (`wait4`) and the throughput. The target is
under 280 MB per worker whatever the file size (`TARGET_PEAK_RSS_MB`), with b2p's default
threads per file (`--threads` to try others). Writes `benchmarks/results/ingest_memory.json`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import in_child, machine_info, run_child

HEADER = (
    "transaction_id,event_name,event_time,slot_id,time_position_class,site_id,"
    "site_section_id,series_id,video_asset_id,network_id,ad_id,creative_id,"
    "max_slot_duration,ad_duration,sales_type,device_type\n"
)
CHUNK_ROWS = 20_000
HOURS = 6
TARGET_PEAK_RSS_MB = 280
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def chunk(rng: random.Random, hour: int, serial: int) -> bytes:
    """CHUNK_ROWS rows of one hour of 2024-06-01: a slot impression then two ads per slot."""
    lines = []
    base = 1717200000 + hour * 3600
    for index in range(CHUNK_ROWS // 3):
        txn = f"{serial:06d}{index:06d}-{rng.getrandbits(32):08x}"
        when = base + rng.randrange(3600)
        slot_class = rng.choice(("PREROLL", "MIDROLL", "POSTROLL", "OVERLAY"))
        ids = ",".join(str(rng.randrange(top)) for top in (50, 500, 200, 10**6)) + ",7"
        lines.append(f"{txn},slotImpression,{when},s1,{slot_class},{ids},,,120,,,ctv\n")
        for ad in range(2):
            sales = rng.choice(("DIRECT", "PROGRAMMATIC", "HOUSE", ""))
            lines.append(
                f"{txn},defaultImpression,{when + 15 * ad},s1,{slot_class},{ids},"
                f"{rng.randrange(10**5)},{rng.randrange(10**5)},,15,{sales},ctv\n"
            )
    return "".join(lines).encode()


def write_big_file(path: Path, min_bytes: int, seed: int = 0) -> int:
    """Write the gzip file; returns its uncompressed size. A few distinct chunks, repeated."""
    rng = random.Random(seed)
    chunks = [chunk(rng, hour, serial) for serial, hour in enumerate(list(range(HOURS)) * 2)]
    written = 0
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(HEADER.encode())
        written += len(HEADER)
        index = 0
        while written < min_bytes:
            data = chunks[index % len(chunks)]
            out.write(data)
            written += len(data)
            index += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0, help="uncompressed size (1.0)")
    parser.add_argument("--workdir", help="where to put the file and lake (default: a temp dir)")
    parser.add_argument("--threads", type=int, help="b2p ingest --threads (default: b2p's)")
    args = parser.parse_args()
    threads = [] if args.threads is None else ["--threads", str(args.threads)]
    load = [round(value, 2) for value in os.getloadavg()]
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        source, lake = Path(work) / "source", Path(work) / "lake"
        source.mkdir()
        started = time.monotonic()
        size = in_child(write_big_file, source / "big.csv.gz", int(args.gigabytes * 1e9))
        print(f"generated {size / 1e6:.0f} MB uncompressed in {time.monotonic() - started:.0f} s")
        ingest = run_child(
            [
                *(sys.executable, "-m", "ingest.cli", "ingest"),
                *("--source", str(source), "--lake", str(lake), "--workers", "1"),
                *threads,
            ]
        )
        if ingest.exit_code not in (0, 2):
            raise SystemExit(f"b2p ingest failed ({ingest.exit_code}): {ingest.stderr[-3000:]}")
    peak_mb, cpu, seconds = ingest.peak_rss_mb, ingest.cpu_seconds, ingest.seconds
    result = {
        "benchmark": "ingest_memory",
        "machine": machine_info(),
        "load_average_before": load,
        "uncompressed_bytes": size,
        "threads": args.threads,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_per_gb": round(cpu / (size / 1e9), 2),
        "peak_rss_mb": round(peak_mb, 1),
        "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    verdict = "met" if peak_mb < TARGET_PEAK_RSS_MB else "NOT met"
    print(
        f"peak RSS {peak_mb:.0f} MB (1 worker, target < {TARGET_PEAK_RSS_MB}: {verdict}); "
        f"{size / 1e6:.0f} MB in {seconds:.1f} s = {size / 1e6 / seconds:.1f} MB/s, "
        f"{cpu:.1f} CPU-s; load average before {load}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
