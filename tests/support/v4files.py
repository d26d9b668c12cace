"""Small builders for v4 log files in tests: text in, files on disk out (no binary fixtures)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

HEADER = "transaction_id,event_name,event_time,slot_id,time_position_class,site_id,ad_duration"


def write_log(
    path: Path, text: str | bytes, compress: bool = True, mtime_ns: int | None = None
) -> Path:
    """Write a log file (gzip unless `compress` is false); `mtime_ns` pins the local ETag."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def lake_files(lake: Path) -> dict[str, bytes]:
    """Every visible file of the lake (relative path → bytes)."""
    return {
        path.relative_to(lake).as_posix(): path.read_bytes()
        for path in sorted(lake.rglob("*"))
        if path.is_file()
    }


def event_files(lake: Path) -> list[str]:
    return sorted(
        path.relative_to(lake).as_posix() for path in lake.glob("v4_events/*/*/*.parquet")
    )


def read_rows(lake: Path, relative: str) -> list[dict[str, Any]]:
    return pq.read_table(lake / relative, partitioning=None).to_pylist()


def log_records(lake: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(lake.glob("_ingest/log/*/*.json"))]


def rejects(lake: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(lake.glob("_ingest/rejects/*.jsonl"))
        for line in path.read_text().splitlines()
    ]
