"""Whether a file was understood: a delivery whose rows are (nearly) all rejected is not a success.

Rejected rows are normal in small numbers (a garbled beacon, a value out of range). A file whose
rows are all rejected, or more than the feed's `max_rejected_share` of them (10 % by default,
`--max-rejected-share` or the mapping file), was not understood: a column mapped to the wrong
field, a time format or delimiter nobody told b2p about. Ingesting what little passes would
make the marts quietly wrong, so the attempt quarantines the whole file instead
(`ingest.logs.attempt`), with a message that names the column, an example value and the fix.

`RejectTally` counts the rejects as they are written; `not_understood` gives the verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ingest.logs.contract import HeaderMapping


class NotUnderstood(ValueError):
    """Too many of the file's rows were rejected: quarantine it. The message says what to do."""


@dataclass(frozen=True)
class Example:
    line: int
    value: str  # as shown to a person: 'x', or 'preroll' + '' for a key built from two columns
    reason: str


@dataclass
class RejectTally:
    """Rejects per (column, reason), with the first example of each."""

    mapping: HeaderMapping
    count: int = 0
    malformed: int = 0  # rejected as records (quotes, field count, limits), not for a value
    by_cause: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    examples: dict[tuple[str | None, str], Example] = field(default_factory=dict)

    def observe(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The reject records, unchanged, counted on their way to the rejects file."""
        for record in records:
            cause = (record["column"], record["reason"])
            self.count += 1
            self.malformed += record["column"] is None
            self.by_cause[cause] += 1
            if cause not in self.examples:
                self.examples[cause] = Example(
                    record["line"], self._value(record), record["reason"]
                )
            yield record

    def _value(self, record: dict[str, Any]) -> str:
        column, values = record["column"], record["values"]
        if column is None or not values:
            return ""
        return " + ".join(repr(values[p]) for p in self.mapping.positions_of(column))


def not_understood(
    rows_read: int, tally: RejectTally, max_rejected_share: float, source_root: str
) -> str | None:
    """Why the file counts as not understood, or None when its rejects are within bounds
    (`source_root`: the folder or prefix to point `b2p inspect` at).

    Every row rejected, for any reason, is not understood. Otherwise the share counts values
    that did not parse among the records that had the header's shape: a record broken as a
    record (an unclosed quote, a wrong field count, over a limit) is damage in the file, and a
    huge broken value yields one such reject per line it held; quarantining the good records
    with it would lose them for one broken value (DECISIONLOG.md).
    """
    if tally.count == 0 or rows_read == 0:
        return None
    shaped = rows_read - tally.malformed
    value_rejects = tally.count - tally.malformed
    share = value_rejects / shaped if shaped else 0.0
    if tally.count < rows_read and share <= max_rejected_share:
        return None
    causes = tally.by_cause if tally.count == rows_read else _value_causes(tally)
    (column, reason), count = causes.most_common(1)[0]
    example = tally.examples[(column, reason)]
    if tally.count == rows_read:
        amount = f"every row ({rows_read}) was rejected"
    else:
        amount = (
            f"{value_rejects} of {shaped} rows ({share:.0%}) were rejected for a value, more "
            f"than the {max_rejected_share:.0%} a file may have (--max-rejected-share)"
        )
    if column is None:
        cause = f"{count} of them because the record {reason} (e.g. line {example.line})"
    else:
        named = mapping_name(tally.mapping, column)
        cause = (
            f"{count} of them on column {named}: e.g. line {example.line}, value "
            f"{example.value} {reason}"
        )
    return (
        f"{amount}, so the file was not understood as it is; {cause}. Run `b2p inspect "
        f"--source {source_root}` to see how its columns and values map, put the mapping in a "
        "file for --column-aliases FILE, then rerun with --retry-quarantined"
    )


def _value_causes(tally: RejectTally) -> Counter[tuple[str | None, str]]:
    return Counter({cause: n for cause, n in tally.by_cause.items() if cause[0] is not None})


def mapping_name(mapping: HeaderMapping, column: str) -> str:
    """`event_time`, or `event_time ('EventTime')` when the file calls it something else."""
    header_name = mapping.header_name(column)
    return column if header_name == column else f"{column} ({header_name!r})"
