"""What a sample of a delivery says: how its columns map, what its values look like, and what
`b2p ingest` would do with it, as it is and with the proposed mapping.

The proposal starts from the mapping given (`--column-aliases`, none by default), adds the known
FreeWheel field names (`candidates.SYNONYMS`, e.g. max_duration → max_slot_duration), and for
each required column still missing adopts the best-ranked candidate when it scores at least
`candidates.ADOPT_AT` (slot_id last: its candidates are judged by the transaction and event
columns). The reject figures come from the ingest's own code (`map_header`, `validate_block`,
`ingest.logs.verdict`) run on the sampled rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.compute as pc

from ingest.inspect import candidates as ranking
from ingest.inspect.candidates import Candidate, FileColumns
from ingest.inspect.sampling import FileSample
from ingest.logs.contract import (
    CONTRACT_NAMES,
    REQUIRED_NAMES,
    FeedMapping,
    HeaderError,
    HeaderMapping,
    map_header,
    normalise_header,
)
from ingest.logs.values import validate_block

TIME_SHAPES: tuple[tuple[str, str], ...] = (
    ("compact YYYYMMDDHHMMSS (UTC)", r"^[0-9]{14}(\.[0-9]+)?$"),
    ("epoch seconds", r"^[0-9]{1,12}$"),
    ("epoch seconds with a fraction", r"^[0-9]{1,12}\.[0-9]*$"),
    ("YYYY-MM-DD HH:MM:SS[.fff] (UTC)", r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}(\.[0-9]+)?$"),
    (
        "ISO-8601 with a UTC offset",
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9:]{8}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:?[0-9]{2})$",
    ),
    ("ISO-8601 without offset (UTC)", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9:]{8}(\.[0-9]+)?$"),
)
VOCABULARY_COLUMNS = ("event_name", "event_type", "time_position_class", "sales_type")
FIRST_REASONS = 5


@dataclass(frozen=True)
class ColumnReport:
    name: str  # normalised
    spellings: tuple[str, ...]  # as the headers write it
    files: int  # how many sampled files have it
    maps_to: str | None  # the contract column (in the proposal)
    how: str


@dataclass
class RejectSummary:
    """What ingest would do with the sampled rows under one mapping."""

    rows: int = 0
    rejected: int = 0
    quarantined: list[str] = field(default_factory=list)  # "<file>: <why>"
    reasons: list[str] = field(default_factory=list)  # the first rejected rows

    @property
    def share(self) -> float:
        return self.rejected / self.rows if self.rows else 0.0

    @property
    def ingests(self) -> bool:
        return not self.quarantined


@dataclass
class Inspection:
    source: str
    listed: int  # log files under the source
    samples: list[FileSample]
    given: FeedMapping
    proposed: FeedMapping
    columns: list[ColumnReport]
    candidates: dict[str, list[Candidate]]  # required columns the file does not name
    time_formats: Counter[str]
    time_examples: dict[str, str]
    vocabularies: dict[str, Counter[str]]
    as_is: RejectSummary
    with_proposal: RejectSummary

    @property
    def readable(self) -> list[FileSample]:
        return [s for s in self.samples if s.error is None]


def inspect_samples(
    source: str, listed: int, samples: Sequence[FileSample], given: FeedMapping
) -> Inspection:
    readable = [s for s in samples if s.error is None]
    files = [_file_columns(s) for s in readable]
    proposed, chosen, found = propose(files, given)
    columns = _column_reports(readable, proposed, chosen)
    formats, examples = _time_formats(readable, proposed)
    return Inspection(
        source=source,
        listed=listed,
        samples=list(samples),
        given=given,
        proposed=proposed,
        columns=columns,
        candidates=found,
        time_formats=formats,
        time_examples=examples,
        vocabularies=_vocabularies(readable, proposed),
        as_is=reject_summary(samples, given),
        with_proposal=reject_summary(samples, proposed),
    )


def _file_columns(sample: FileSample) -> dict[str, pa.Array]:
    columns: dict[str, pa.Array] = {}
    for position, raw in enumerate(sample.header):
        columns.setdefault(
            normalise_header(raw) or f"column_{position + 1}", sample.columns[position]
        )
    return columns


# ---------------------------------------------------------------------------------------------
# the proposal


def propose(
    files: Sequence[FileColumns], given: FeedMapping
) -> tuple[FeedMapping, dict[str, str], dict[str, list[Candidate]]]:
    """The proposed mapping, how each added alias was chosen, and the ranked candidates of each
    required column the files do not name."""
    names = list(dict.fromkeys(name for file in files for name in file))
    aliases, built = dict(given.aliases), dict(given.built)
    chosen: dict[str, str] = {}  # normalised column -> why it was aliased

    def holder(contract_name: str) -> str | None:
        """The file column that holds a contract column under the current aliases."""
        for name in names:
            if aliases.get(name, name) == contract_name and contract_name not in built:
                return name
        return None

    for name in names:
        target = ranking.SYNONYMS.get(name)
        if name not in aliases and name not in CONTRACT_NAMES and target and not holder(target):
            aliases[name] = target
            chosen[name] = "known FreeWheel field name"
    found: dict[str, list[Candidate]] = {}
    for target in sorted(REQUIRED_NAMES, key=lambda n: n == "slot_id"):  # slot_id last
        if target in built or holder(target):
            continue
        free = [n for n in names if aliases.get(n, n) not in CONTRACT_NAMES]
        known = {c: h for c in CONTRACT_NAMES if (h := holder(c))}
        found[target] = ranking.rank(target, files, free, known)
        best = found[target][0] if found[target] else None
        if best is None or best.score < ranking.ADOPT_AT:
            continue
        if len(best.parts) == 1:
            aliases[best.parts[0]] = target
            chosen[best.parts[0]] = f"best candidate for {target}"
        else:
            built[target] = best.parts
    return replace(given, aliases=aliases, built=built), chosen, found


def _column_reports(
    samples: Sequence[FileSample], proposed: FeedMapping, chosen: dict[str, str]
) -> list[ColumnReport]:
    spellings: dict[str, list[str]] = {}
    counts: Counter[str] = Counter()
    for sample in samples:
        for position, raw in enumerate(sample.header):
            name = normalise_header(raw) or f"column_{position + 1}"
            spellings.setdefault(name, [])
            if raw not in spellings[name]:
                spellings[name].append(raw)
            counts[name] += 1
    parts = {part: target for target, key in proposed.built.items() for part in key}
    reports = []
    for name, written in spellings.items():
        target = proposed.aliases.get(name, name)
        if target in CONTRACT_NAMES and target not in proposed.built:
            how = chosen.get(name, "alias (given)" if name in proposed.aliases else "same name")
        else:
            target, how = None, "kept in extra_columns"
        if name in parts:
            how += f"; part of the {parts[name]} key"
        reports.append(ColumnReport(name, tuple(written), counts[name], target, how))
    return reports


# ---------------------------------------------------------------------------------------------
# values


def _mapped(sample: FileSample, mapping: FeedMapping) -> HeaderMapping | None:
    try:
        return map_header(sample.header, mapping)
    except HeaderError:
        return None


def _time_formats(
    samples: Sequence[FileSample], mapping: FeedMapping
) -> tuple[Counter[str], dict[str, str]]:
    formats: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for sample in samples:
        header = _mapped(sample, mapping)
        if header is None or "event_time" not in header.contract_positions:
            continue
        for value in sample.columns[header.contract_positions["event_time"]].to_pylist():
            text = value.strip()
            if not text:
                continue
            shape = next(
                (n for n, p in TIME_SHAPES if re.match(p, text)), "not a time ingest reads"
            )
            formats[shape] += 1
            examples.setdefault(shape, text)
    return formats, examples


def _vocabularies(samples: Sequence[FileSample], mapping: FeedMapping) -> dict[str, Counter[str]]:
    """Value counts of the columns that hold the vocabulary columns, labelled `sales_type` or
    `sales_type (sales_channel_type)` when the files call it something else."""
    vocabularies: dict[str, Counter[str]] = {}
    for sample in samples:
        header = _mapped(sample, mapping)
        if header is None:
            continue
        for name in VOCABULARY_COLUMNS:
            if name in header.contract_positions:
                position = header.contract_positions[name]
                theirs = normalise_header(sample.header[position])
                label = name if theirs == name else f"{name} ({theirs})"
                values = pc.utf8_trim_whitespace(sample.columns[position])
                counts = pc.value_counts(values).to_pylist()
                vocabularies.setdefault(label, Counter()).update(
                    {c["values"]: c["counts"] for c in counts}
                )
    return vocabularies


def reject_summary(samples: Sequence[FileSample], mapping: FeedMapping) -> RejectSummary:
    """What ingest would do with each sampled file under `mapping`."""
    summary = RejectSummary()
    for sample in samples:
        if sample.error is not None:
            summary.quarantined.append(f"{sample.uri}: {sample.error}")
            continue
        try:
            header = map_header(sample.header, mapping)
        except HeaderError as exc:
            summary.quarantined.append(f"{sample.uri}: {exc}")
            continue
        rejected = _rejected_rows(sample, header, summary.reasons)
        summary.rows += sample.rows
        summary.rejected += rejected
        if rejected and (
            rejected == sample.rows or rejected / sample.rows > mapping.max_rejected_share
        ):
            summary.quarantined.append(
                f"{sample.uri}: {rejected} of {sample.rows} sampled rows rejected: not understood"
            )
    return summary


def _rejected_rows(sample: FileSample, header: HeaderMapping, reasons: list[str]) -> int:
    for record in sample.malformed[: FIRST_REASONS - len(reasons)]:
        reasons.append(f"{sample.uri} line {record.line}: the record {record.reason}")
    if not sample.lines:
        return len(sample.malformed)
    block = validate_block(sample.columns, header)
    failed = block.failed_mask()
    if failed is None:
        return len(sample.malformed)
    for row in pc.indices_nonzero(failed).to_pylist()[: max(0, FIRST_REASONS - len(reasons))]:
        problem = next(p for p in block.problems if p.mask[row].as_py())
        shown = " + ".join(
            repr(sample.columns[i][row].as_py()) for i in header.positions_of(problem.column)
        )
        reasons.append(
            f"{sample.uri} line {sample.lines[row]}, column {problem.column} "
            f"({header.header_name(problem.column)!r}): value {shown} {problem.reason}"
        )
    return len(sample.malformed) + failed.true_count
