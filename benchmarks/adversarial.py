"""The big hostile inputs of issue 11: `python -m benchmarks.adversarial [--only NAME …]`.

Each case is one gzip file beside a small valid one, ingested by `b2p ingest --workers 1` in a
fresh process; the table gives the process's peak RSS (from the kernel, `wait4`) and wall time,
and checks the outcome against what the generator wrote:

- `long-line`: one 512 MB line among 200,000 valid rows: rejected by streaming past it;
- `nul`: 1 GB of NUL bytes (4.6 MB of gzip): quarantined at its first bytes;
- `open-quote`: line 3 opens a quote in `sales_type` that never closes, in a 256 MB file:
  line 3 is rejected, every record after it is ingested;
- `big-value`: a 50 MB quoted free-text value with line breaks, then a valid record: taken as
  an unclosed quote (over 100 lines / 1 MiB), so its line is rejected and the lines it held
  are read as records (rejected too); the record after it is ingested.

The budget is 300 MB peak RSS per case (a 1–3 GB Lambda runs the same code). Inputs are cached
under `.bench/adversarial/` (about 70 MB of gzip); results go to
`benchmarks/results/adversarial.json`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.ingest_memory import HEADER, chunk
from benchmarks.machine import in_child, machine_info, run_child

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench" / "adversarial"
RESULTS = ROOT / "benchmarks" / "results"
BUDGET_MB = 300
MB = 1 << 20
PIECE = 8 * MB


@dataclass
class Case:
    name: str
    what: str
    expected_status: int


@dataclass
class Outcome:
    name: str
    what: str
    uncompressed_mb: float
    seconds: float
    peak_rss_mb: float
    exit_status: int
    counts: dict[str, int]
    as_expected: bool


def rows(count: int) -> bytes:
    """`count` valid rows (whole chunks of the memory benchmark's generator, then a cut)."""
    rng = random.Random(1)
    pieces, made = [], 0
    while made < count:
        block = chunk(rng, made % 6, made)
        pieces.append(block)
        made += block.count(b"\n")
    data = b"".join(pieces)
    return b"".join(data.splitlines(keepends=True)[:count])


def _write_long_line(out: gzip.GzipFile) -> dict[str, int]:
    before, after = rows(100_000), rows(100_000)
    out.write(HEADER.encode() + before)
    out.write(b"t-long,slotImpression,1717200000,s1,PREROLL,1,2,3,4,7,,,120,,,")
    for _ in range(512 * MB // PIECE):
        out.write(b"x" * PIECE)
    out.write(b"\n" + after)
    return {"rows_written": 200_000, "rows_rejected": 1, "lines_read": 200_002}


def _write_nul(out: gzip.GzipFile) -> dict[str, int]:
    zeros = bytes(PIECE)
    for _ in range(1024 * MB // PIECE):
        out.write(zeros)
    return {"rows_written": 0, "rows_rejected": 0}


def _write_open_quote(out: gzip.GzipFile) -> dict[str, int]:
    out.write(HEADER.encode() + rows(1))
    out.write(b't-open,slotImpression,1717200000,s1,PREROLL,1,2,3,4,7,,,120,,"HOUSE,ctv\n')
    body = rows(300_000)
    lines, written = 3, 1
    while out.tell() < 256 * MB:  # GzipFile.tell(): bytes before compression
        out.write(body)
        lines += body.count(b"\n")
        written += body.count(b"\n")
    return {"rows_written": written, "rows_rejected": 1, "lines_read": lines}


def _write_big_value(out: gzip.GzipFile) -> dict[str, int]:
    out.write(HEADER.encode() + rows(10))
    value_line = b"lorem ipsum, dolor sit amet, consectetur adipiscing elit, sed do eiusmod\n"
    count = 50 * MB // len(value_line)
    out.write(b't-big,slotImpression,1717200000,s1,PREROLL,1,2,3,4,7,,,120,,,"')
    for _ in range(count // 1000):
        out.write(value_line * 1000)
    out.write(b'"\n' + rows(10))
    # the opening line, the value's other lines, the line of its closing quote: all rejected
    value_lines = (count // 1000) * 1000
    return {"rows_written": 20, "rows_rejected": value_lines + 1, "lines_read": value_lines + 22}


CASES: dict[str, tuple[Case, Callable[[gzip.GzipFile], dict[str, int]]]] = {
    "long-line": (Case("long-line", "one 512 MB line among 200,000 rows", 0), _write_long_line),
    "nul": (Case("nul", "1 GB of NUL bytes", 2), _write_nul),
    "open-quote": (
        Case("open-quote", "an unclosed quote on line 3 of a 256 MB file", 0),
        _write_open_quote,
    ),
    "big-value": (Case("big-value", "a 50 MB quoted value with line breaks", 0), _write_big_value),
}


def input_file(name: str) -> tuple[Path, dict[str, int]]:
    """The case's gzip file (generated once) and the counts its log record must show."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path, truth = CACHE / f"{name}.csv.gz", CACHE / f"{name}.truth.json"
    if not (path.exists() and truth.exists()):
        _, write = CASES[name]
        with gzip.open(path.with_suffix(".tmp"), "wb", compresslevel=1) as out:
            expected = write(out)  # type: ignore[arg-type]
        path.with_suffix(".tmp").rename(path)
        truth.write_text(json.dumps(expected))
    return path, json.loads(truth.read_text())


def run_case(name: str, scratch: Path) -> Outcome:
    case, _ = CASES[name]
    path, expected = input_file(name)
    source, lake = scratch / name / "source", scratch / name / "lake"
    source.mkdir(parents=True)
    os.link(path, source / path.name)  # same file system: the cache holds the scratch folder
    (source / "valid.csv").write_bytes(HEADER.encode() + rows(5))
    command = [sys.executable, "-m", "ingest.cli", "ingest", "--source", str(source)]
    command += ["--lake", str(lake), "--workers", "1"]
    run = run_child(command)
    [record] = [
        json.loads(p.read_text())
        for p in lake.glob("_ingest/log/*/*.json")
        if json.loads(p.read_text())["key"] == path.name
    ]
    counts = {
        key: record[key]
        for key in ("rows_written", "rows_rejected", "lines_read", "lines_rejected")
    }
    counts["quarantined"] = int(record["status"] == "quarantined")
    accounted = record["lines_read"] == (
        record["header_lines"]
        + record["lines_written"]
        + record["lines_rejected"]
        + record["lines_skipped"]
    )
    wanted = {key: value for key, value in expected.items() if value}
    as_expected = (
        run.exit_code == case.expected_status
        and all(counts.get(key) == value for key, value in wanted.items())
        and (record["status"] == "quarantined" or accounted)
    )
    return Outcome(
        name,
        case.what,
        round(record["uncompressed_bytes"] / 1e6, 1),
        round(run.seconds, 1),
        round(run.peak_rss_mb, 1),
        run.exit_code,
        counts,
        as_expected,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), help="run only these cases")
    args = parser.parse_args(argv)
    names = args.only or list(CASES)
    for name in names:  # generate before measuring anything, in a child (benchmarks.machine)
        in_child(input_file, name)
    outcomes = []
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        for name in names:
            outcomes.append(run_case(name, Path(scratch)))
            print_row(outcomes[-1])
    RESULTS.mkdir(parents=True, exist_ok=True)
    cases = [asdict(outcome) for outcome in outcomes]
    results = {"machine": machine_info(), "budget_mb": BUDGET_MB, "cases": cases}
    (RESULTS / "adversarial.json").write_text(json.dumps(results, indent=2))
    within = all(o.peak_rss_mb < BUDGET_MB and o.as_expected for o in outcomes)
    print(f"all under {BUDGET_MB} MB and as expected: {'yes' if within else 'NO'}")
    return 0 if within else 1


def print_row(outcome: Outcome) -> None:
    verdict = "ok" if outcome.as_expected else "UNEXPECTED"
    print(
        f"{outcome.name:11s} {outcome.what:46s} {outcome.uncompressed_mb:8.1f} MB read "
        f"{outcome.seconds:6.1f} s {outcome.peak_rss_mb:6.0f} MB peak RSS  exit "
        f"{outcome.exit_status}  {verdict}  {outcome.counts}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
