"""`b2p inspect`: what a delivery nobody here has seen looks like, and the mapping to ingest it.

    b2p inspect --source DIR|s3://… [--files N] [--write-aliases FILE] [--column-aliases FILE]

It reads the first `--files` log files under the source (in key order), at most
`--sample-mb` of each once decompressed (it never reads a whole file), and prints:

- each file's delimiter, encoding, BOM and line endings, and its rows sampled;
- every column, and how it maps onto the log contract (same name, an alias, a known FreeWheel
  field name, the best candidate for a required column, or kept in extra_columns);
- for each required column the header does not name, the candidate columns, best first, by name
  and by the shape of their values (`ingest.inspect.candidates`);
- the time format of event_time; the vocabularies of event_name, event_type,
  time_position_class and the sales column, with counts;
- what `b2p ingest` would do with the sampled rows, as they are (with `--column-aliases FILE`
  if given) and with the proposed mapping: rows rejected, the first reasons, the files it would
  quarantine.

`--write-aliases FILE` writes the proposed mapping as a mapping file for `b2p ingest
--column-aliases` (JSON; review it). Exit status: 0 when the files would ingest as they are, 2
when they would not (quarantined files, or a share of rejected rows over the threshold), 1 when
it could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter
from pathlib import Path

from ingest.errors import EXIT_OK, EXIT_QUARANTINED, UserError
from ingest.inspect.inspection import Inspection, RejectSummary, inspect_samples
from ingest.inspect.sampling import SAMPLE_BYTES, FileSample, read_sample
from ingest.logs.contract import FeedMapping, load_aliases, mapping_document
from ingest.logs.reader import is_log_file
from ingest.logs.runner import SourceAccess, add_source_access_arguments

DEFAULT_FILES = 5
VOCABULARY_SHOWN = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("--source", required=True, help="folder or s3://bucket/prefix of the logs")
    parser.add_argument(
        "--files",
        type=int,
        default=DEFAULT_FILES,
        metavar="N",
        help=f"how many log files to sample, the first in key order (default {DEFAULT_FILES})",
    )
    parser.add_argument(
        "--sample-mb",
        type=float,
        default=SAMPLE_BYTES / 1024 / 1024,
        metavar="MB",
        help="decompressed megabytes read from each file at most (default %(default)g)",
    )
    parser.add_argument(
        "--write-aliases",
        metavar="FILE",
        help="write the proposed mapping file here (JSON, for b2p ingest --column-aliases)",
    )
    parser.add_argument(
        "--column-aliases",
        metavar="FILE",
        help="a mapping file to check, and to start the proposal from",
    )
    add_source_access_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.files < 1:
        raise UserError("--files must be 1 or more")
    if args.sample_mb <= 0:
        raise UserError("--sample-mb must be more than 0")
    given = load_aliases(args.column_aliases) if args.column_aliases else FeedMapping()
    source = SourceAccess(args.source, args.source_role_arn, args.source_external_id).open()
    keys = sorted(info.key for info in source.list() if is_log_file(info.key))
    if not keys:
        raise UserError(f"no log files (*.csv, *.gz, *.csv.gz) under {args.source}")
    max_bytes = int(args.sample_mb * 1024 * 1024)
    samples = [read_sample(source, key, max_bytes) for key in keys[: args.files]]
    inspection = inspect_samples(args.source, len(keys), samples, given)
    print(render(inspection, args.column_aliases, max_bytes))
    if args.write_aliases:
        _write_mapping(Path(args.write_aliases), inspection)
        print(f"\nWrote the proposed mapping to {args.write_aliases}; review it, then:")
        print(f"  b2p ingest --source {args.source} --column-aliases {args.write_aliases}")
    if inspection.as_is.ingests and inspection.as_is.rows:
        return EXIT_OK
    print(
        "\nExit 2: the files would not ingest as they are"
        + ("" if inspection.with_proposal.ingests else ", nor with the proposed mapping")
        + "."
    )
    return EXIT_QUARANTINED


def _write_mapping(path: Path, inspection: Inspection) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    comment = (
        f"written by b2p inspect on {today} from {len(inspection.samples)} file(s) of "
        f"{inspection.source}; review every entry before b2p ingest --column-aliases"
    )
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(mapping_document(inspection.proposed, comment), encoding="utf-8")
    temp.replace(path)


# ---------------------------------------------------------------------------------------------
# the report


def render(inspection: Inspection, given_path: str | None, max_bytes: int) -> str:
    lines = [
        f"b2p inspect: {inspection.source}: {len(inspection.samples)} of {inspection.listed} log "
        f"file(s) sampled, at most {max_bytes / 1024 / 1024:g} MB of each",
        "",
        "Files",
        *_file_lines(inspection.samples),
        "",
        *_column_lines(inspection),
        *_candidate_lines(inspection),
        *_time_lines(inspection),
        *_vocabulary_lines(inspection),
        "Would b2p ingest take them?",
        *_verdict_lines(
            f"as they are ({'--column-aliases ' + given_path if given_path else 'no mapping'})",
            inspection.as_is,
        ),
        *_verdict_lines("with the proposed mapping", inspection.with_proposal),
    ]
    return "\n".join(lines)


def _file_lines(samples: list[FileSample]) -> list[str]:
    width = max(len(s.key) for s in samples)
    lines = []
    for sample in samples:
        if sample.error is not None or sample.dialect is None:
            lines.append(f"  {sample.key:<{width}}  unreadable: {sample.error}")
            continue
        dialect = sample.dialect
        read = "whole file" if sample.complete else f"first {sample.sampled_bytes / 1e6:.1f} MB"
        lines.append(
            f"  {sample.key:<{width}}  {sample.rows:>8,} rows ({read})  {dialect.delimiter_name}, "
            f"{dialect.encoding}{' with BOM' if dialect.bom else ''}, {dialect.line_endings}"
        )
    return lines


def _column_lines(inspection: Inspection) -> list[str]:
    rows = [
        (
            " / ".join(c.spellings),
            c.maps_to or "-",
            ("* " if "candidate" in c.how or "FreeWheel" in c.how else "  ") + c.how,
        )
        for c in inspection.columns
    ]
    rows += [
        (" + ".join(parts), name, "* built from these columns")
        for name, parts in inspection.proposed.built.items()
    ]
    header_width = max([len(r[0]) for r in rows] + [6])
    target_width = max([len(r[1]) for r in rows] + [15])
    lines = [f"Columns ({len(inspection.columns)}; * = proposed by b2p inspect, review these)"]
    lines.append(f"  {'header':<{header_width}}  {'contract column':<{target_width}}  how")
    lines += [f"  {h:<{header_width}}  {t:<{target_width}}  {how}" for h, t, how in rows]
    return [*lines, ""]


def _candidate_lines(inspection: Inspection) -> list[str]:
    if not inspection.candidates:
        return []
    lines = ["Required columns the header does not name: candidates, best first"]
    lines.append("  (score = 0.35 x name + 0.65 x values; the best is proposed from 0.5)")
    for target, found in inspection.candidates.items():
        lines.append(f"  {target}:")
        if not found:
            lines.append("    no candidate column; map it with --column-aliases FILE")
        width = max([len(c.label) for c in found] + [1])
        for rank, candidate in enumerate(found, start=1):
            lines.append(
                f"    {rank}. {candidate.label:<{width}}  {candidate.score:.2f}  (name "
                f"{candidate.name_score:.2f}, values {candidate.value_score:.2f}: "
                f"{candidate.evidence})"
            )
    return [*lines, ""]


def _time_lines(inspection: Inspection) -> list[str]:
    formats = inspection.time_formats
    total = sum(formats.values())
    if not total:
        return ["Time format of event_time: no event_time column to read", ""]
    parts = [
        f"{name} on {100 * count / total:.0f}% of {total:,} values, e.g. "
        f"{inspection.time_examples[name]}"
        for name, count in formats.most_common()
    ]
    return ["Time format of event_time: " + "; ".join(parts), ""]


def _vocabulary_lines(inspection: Inspection) -> list[str]:
    lines = ["Vocabularies (sampled rows, as delivered)"]
    for name, counts in inspection.vocabularies.items():
        lines.append(f"  {name}: {_counts(counts)}")
    return [*lines, ""]


def _counts(counts: Counter[str]) -> str:
    shown = [
        f"{value if value else '(empty)'} {count:,}"
        for value, count in counts.most_common(VOCABULARY_SHOWN)
    ]
    more = len(counts) - VOCABULARY_SHOWN
    return " · ".join(shown) + (f" · … {more} more" if more > 0 else "")


def _verdict_lines(label: str, summary: RejectSummary) -> list[str]:
    if not summary.rows:
        verdict = "NO: every file would be quarantined"
    else:
        verdict = (
            f"{'yes' if summary.ingests else 'NO'}: {summary.rejected:,} of {summary.rows:,} "
            f"sampled rows rejected ({100 * summary.share:.1f}%), "
            f"{len(summary.quarantined)} file(s) quarantined"
        )
    lines = [f"  {label}: {verdict}"]
    lines += [f"    quarantined: {reason}" for reason in summary.quarantined[:1]]
    if len(summary.quarantined) > 1:
        lines.append(f"    … and {len(summary.quarantined) - 1} more file(s)")
    lines += [f"    rejected: {reason}" for reason in summary.reasons[:3]]
    return lines
