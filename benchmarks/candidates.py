"""The contenders of the ingest benchmark, each run in a process of its own.

    python -m benchmarks.candidates <name> <input.csv.gz> <output folder>

prints one JSON line `{"rows": N}` (rows written) on success; `b2p ingest` runs as itself
(`b2p_command`) and its rows are counted afterwards. The harness (`ingest_bench`)
times the whole process — interpreter start and imports included, for every contender alike —
and reads its peak RSS from the kernel.

Every contender reads the same gzip file and writes zstd Parquet:
- `b2p`: `b2p ingest --workers 1` (typed contract columns, extra_columns JSON, lineage columns,
  rejects with line numbers, ingest log);
- `duckdb`: `COPY (SELECT * FROM read_csv(..., columns = <the contract types>,
  ignore_errors = true)) TO ... (FORMAT parquet, COMPRESSION zstd)` — the same column types as
  our contract, given explicitly rather than sniffed, so both sides type the same columns the
  same way; bad rows are skipped without a record;
- `duckdb_rejects`: the same with `store_rejects = true`, DuckDB's analogue of our rejects
  (line number and reason of every bad row, kept in a table);
- `pandas`: `read_csv` with the contract dtypes, then `to_parquet(compression="zstd")`;
- `gunzip_isal`, `gunzip_zlib`: inflate the file and discard the bytes — the floor.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.v4file import HEADER
from ingest.logs.contract import CONTRACT

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "timestamp[ms]": "TIMESTAMP",
}
# the contract's types, as DuckDB names them, in the benchmark file's column order; its two
# extra columns are text
CONTRACT_TYPES = {
    **{name: "VARCHAR" for name in HEADER},
    **{column.name: _DUCKDB_TYPES[str(column.type)] for column in CONTRACT},
}
READ_BYTES = 8 * 1024 * 1024


def b2p_command(source_folder: Path, lake: Path, threads: int | None = None) -> list[str]:
    """`b2p ingest`, run directly by the harness (its rows are counted afterwards, untimed);
    `threads` None: b2p's default for the machine."""
    command = [sys.executable, "-m", "ingest.cli", "ingest", "--source", str(source_folder)]
    command += ["--lake", str(lake), "--workers", "1"]
    return command if threads is None else [*command, "--threads", str(threads)]


def lake_rows(lake: Path) -> int:
    import pyarrow.parquet as pq

    files = sorted((lake / "v4_events").rglob("*.parquet"))
    return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


def _duckdb_copy(source: Path, out: Path, error_option: str) -> int:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    target = out / "duckdb.parquet"
    columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in CONTRACT_TYPES.items()) + "}"
    connection = duckdb.connect()
    connection.execute(
        f"COPY (SELECT * FROM read_csv('{source}', header = true, columns = {columns}, "
        f"{error_option})) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
    )
    row = connection.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
    return int(row[0]) if row else 0


def run_duckdb(source: Path, out: Path) -> int:
    return _duckdb_copy(source, out, "ignore_errors = true")


def run_duckdb_rejects(source: Path, out: Path) -> int:
    return _duckdb_copy(source, out, "store_rejects = true")


def run_pandas(source: Path, out: Path) -> int:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    dtypes = {
        name: {"VARCHAR": "string", "BIGINT": "Int64", "DOUBLE": "float64"}[kind]
        for name, kind in CONTRACT_TYPES.items()
        if kind != "TIMESTAMP"
    }
    # bad rows: a wrong field count is skipped, an unparseable number becomes NaN (no record)
    frame = pd.read_csv(source, dtype="string", on_bad_lines="skip", keep_default_na=False)
    for name, dtype in dtypes.items():
        if dtype != "string":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(dtype)
    frame["event_time"] = pd.to_datetime(frame["event_time"], format="ISO8601")
    frame.to_parquet(out / "pandas.parquet", compression="zstd", index=False)
    return len(frame)


def _drain(stream: object) -> int:
    total = 0
    while chunk := stream.read(READ_BYTES):  # type: ignore[attr-defined]
        total += len(chunk)
    return total


def run_gunzip_isal(source: Path, out: Path) -> int:
    from isal import igzip

    with igzip.open(source, "rb") as stream:
        return _drain(stream)


def run_gunzip_zlib(source: Path, out: Path) -> int:
    with gzip.open(source, "rb") as stream:
        return _drain(stream)


CANDIDATES: dict[str, Callable[[Path, Path], int]] = {
    "duckdb": run_duckdb,
    "duckdb_rejects": run_duckdb_rejects,
    "pandas": run_pandas,
    "gunzip_isal": run_gunzip_isal,
    "gunzip_zlib": run_gunzip_zlib,
}


def main(argv: list[str]) -> int:
    name, source, out = argv
    rows = CANDIDATES[name](Path(source), Path(out))
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
# the benchmark file holds every contract column and nothing else but the two extra ones
assert tuple(CONTRACT_TYPES) == HEADER
