"""Which of a file's columns could be a contract column it lacks, ranked by name and by values.

The name score compares the column's normalised name with the contract column's and its known
synonyms (token overlap and edit similarity, 0-1). The value score asks what the contract
column's values must look like, on the sampled rows (0-1):

    transaction_id        present on every row, each value on several rows (one ad request)
    event_name            FreeWheel event names (slotImpression, defaultImpression, quartiles…)
    event_time            timestamps ingest can parse, in range
    time_position_class   time position classes (preroll, MIDROLL, Unknown…)
    slot_id               unique per request among the slotImpression rows, and the key every
                          ad row (defaultImpression) finds its slot by; a key of two columns
                          (the time position class + an index) is tried as well

The score is 0.35 × name + 0.65 × values: what values look like decides, the name breaks ties.
A key of two columns is offered only when its second column is not as good a key alone, and
loses 0.1 against one column that is as good (one column does not depend on how every row
spells the class).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ingest.logs.values import built_key, parse_event_time

# Names publishers' stored v4 tables give contract columns (FreeWheel's own field dictionary is
# not public): `b2p inspect` proposes them as aliases unasked, as a starting point to review.
SYNONYMS: dict[str, str] = {
    "max_duration": "max_slot_duration",
    "slot_max_duration": "max_slot_duration",
    "sales_channel_type": "sales_type",
    "sales_channel": "sales_type",
    "txn_id": "transaction_id",
    "event_timestamp": "event_time",
    "timestamp": "event_time",
    "event_date_time": "event_time",
    "custom_id": "slot_id",
    "slot_custom_id": "slot_id",
    "tpc": "time_position_class",
    "slot_time_position_class": "time_position_class",
}
EVENT_NAMES = frozenset(
    name.lower()
    for name in (
        "slotImpression",
        "defaultImpression",
        "firstQuartile",
        "midPoint",
        "thirdQuartile",
        "complete",
        "defaultClick",
        "click",
    )
)
POSITION_CLASSES = frozenset(
    ("PREROLL", "MIDROLL", "PAUSE_MIDROLL", "POSTROLL", "OVERLAY", "DISPLAY", "UNKNOWN")
)
_SMALL_INTEGER = r"^\s*-?[0-9]{1,6}\s*$"
TWO_COLUMN_PENALTY = 0.1
UNIQUE_ENOUGH = 0.995
ADOPT_AT = 0.5  # a best candidate scoring less is shown, not written into the mapping


# one sampled file: normalised column name -> its raw values (all the same length)
FileColumns = Mapping[str, pa.Array]


@dataclass(frozen=True)
class Candidate:
    target: str  # the contract column
    parts: tuple[str, ...]  # the file's column(s), normalised; several for a built key
    name_score: float
    value_score: float
    evidence: str

    @property
    def score(self) -> float:
        penalty = TWO_COLUMN_PENALTY if len(self.parts) > 1 else 0.0
        return round(0.35 * self.name_score + 0.65 * self.value_score - penalty, 3)

    @property
    def label(self) -> str:
        return " + ".join(self.parts)


def name_score(column: str, target: str) -> float:
    """How much a column's name says it is `target` (1.0 for the name or a known synonym)."""
    best = 0.0
    for name in (target, *(alias for alias, to in SYNONYMS.items() if to == target)):
        if column == name:
            return 1.0
        ours, theirs = set(column.split("_")), set(name.split("_"))
        overlap = len(ours & theirs) / len(ours | theirs)
        similar = difflib.SequenceMatcher(None, column, name).ratio()
        best = max(best, 0.5 * overlap + 0.5 * similar)
    return round(best, 3)


def rank(
    target: str,
    files: Sequence[FileColumns],
    free: Sequence[str],
    known: Mapping[str, str],
    limit: int = 3,
) -> list[Candidate]:
    """The best `limit` candidates for `target` among the `free` columns (not mapped to any
    contract column); `known` maps contract names to the columns already holding them."""
    if target == "slot_id":
        candidates = _slot_candidates(files, free, known)
    else:
        shape = _SHAPES.get(target)
        candidates = []
        for column in free:
            value, evidence = shape(files, column) if shape else (0.0, "")
            candidates.append(
                Candidate(target, (column,), name_score(column, target), value, evidence)
            )
    candidates.sort(key=lambda c: (-c.score, len(c.parts), c.label))
    return candidates[:limit]


# ---------------------------------------------------------------------------------------------
# what each contract column's values look like


def _share(
    files: Sequence[FileColumns], column: str, hit: Callable[[pa.Array], pa.Array]
) -> tuple[int, int]:
    hits = total = 0
    for file in files:
        if column in file:
            values = pc.utf8_trim_whitespace(file[column])
            present = values.filter(pc.not_equal(values, ""))
            total += len(values)
            hits += (
                int(pc.sum(pc.cast(hit(present), pa.int64())).as_py() or 0) if len(present) else 0
            )
    return hits, total


def _in_set(vocabulary: frozenset[str], case: Callable[[pa.Array], pa.Array]) -> Callable:
    allowed = pa.array(sorted(vocabulary))
    return lambda values: pc.is_in(case(values), value_set=allowed)


def _event_names(files: Sequence[FileColumns], column: str) -> tuple[float, str]:
    hits, total = _share(files, column, _in_set(EVENT_NAMES, pc.utf8_lower))
    return _ratio(hits, total), f"{_percent(hits, total)} of values are FreeWheel event names"


def _position_classes(files: Sequence[FileColumns], column: str) -> tuple[float, str]:
    hits, total = _share(files, column, _in_set(POSITION_CLASSES, pc.utf8_upper))
    return _ratio(hits, total), f"{_percent(hits, total)} of values are time position classes"


def _event_times(files: Sequence[FileColumns], column: str) -> tuple[float, str]:
    hits, total = _share(files, column, lambda v: pc.is_valid(parse_event_time(v)))
    return _ratio(hits, total), f"{_percent(hits, total)} of values parse as timestamps"


def _transactions(files: Sequence[FileColumns], column: str) -> tuple[float, str]:
    present = total = distinct = 0
    for file in files:
        if column in file:
            values = pc.utf8_trim_whitespace(file[column])
            total += len(values)
            present += len(values) - int(
                pc.sum(pc.cast(pc.equal(values, ""), pa.int64())).as_py() or 0
            )
            distinct += len(pc.unique(values))
    if not total:
        return 0.0, ""
    rows_per_value = present / max(distinct, 1)
    repeated = 1.0 if 1.5 <= rows_per_value <= 500 else 0.4
    return round(present / total * repeated, 3), f"{rows_per_value:.1f} rows per value"


_SHAPES: dict[str, Callable[[Sequence[FileColumns], str], tuple[float, str]]] = {
    "transaction_id": _transactions,
    "event_name": _event_names,
    "event_time": _event_times,
    "time_position_class": _position_classes,
}


def _slot_candidates(
    files: Sequence[FileColumns], free: Sequence[str], known: Mapping[str, str]
) -> list[Candidate]:
    keys: list[tuple[str, ...]] = [(column,) for column in free]
    position_class = known.get("time_position_class")
    if position_class:
        keys += [(position_class, c) for c in free if _is_small_integer_column(files, c)]
    candidates = []
    alone: dict[str, float] = {}
    for parts in keys:
        value, evidence = _slot_key_shape(files, parts, known)
        if len(parts) == 1:
            alone[parts[0]] = value
        elif value <= alone.get(parts[1], 0.0):
            continue  # the index is as good a key by itself
        names = [name_score(p, "slot_id") for p in parts if p != position_class] or [0.0]
        candidates.append(Candidate("slot_id", parts, max(names), value, evidence))
    return candidates


def _is_small_integer_column(files: Sequence[FileColumns], column: str) -> bool:
    hits, total = _share(files, column, lambda v: pc.match_substring_regex(v, _SMALL_INTEGER))
    return total > 0 and hits / total >= 0.9


def _slot_key_shape(
    files: Sequence[FileColumns], parts: Sequence[str], known: Mapping[str, str]
) -> tuple[float, str]:
    """How well a key identifies slots: unique per request on the slotImpression records (an
    exact duplicate record is one record), found by every defaultImpression row of its request."""
    transaction, event = known.get("transaction_id"), known.get("event_name")
    slots = unique = ads = joined = 0
    for file in files:
        if transaction not in file or event not in file or any(p not in file for p in parts):
            continue
        key = built_key([file[p] for p in parts])
        pair = pc.binary_join_element_wise(pc.utf8_trim_whitespace(file[transaction]), key, "\x1f")
        names = pc.utf8_lower(pc.utf8_trim_whitespace(file[event]))
        is_slot = pc.equal(names, "slotimpression")
        records = pc.binary_join_element_wise(*file.values(), "\x1f").filter(is_slot)
        slot_pairs = pc.unique(pair.filter(pc.and_(is_slot, pc.not_equal(key, ""))))
        slots += len(pc.unique(records))
        unique += len(slot_pairs)
        ad_pairs = pair.filter(pc.equal(names, "defaultimpression"))
        ads += len(ad_pairs)
        joined += int(
            pc.sum(pc.cast(pc.is_in(ad_pairs, value_set=slot_pairs), pa.int64())).as_py() or 0
        )
    if not slots:
        return 0.0, "no slotImpression rows to test it on"
    unique_share, join_share = unique / slots, (joined / ads if ads else 1.0)
    # a slot re-logged with other values is not a duplicate record: allow a few
    value = join_share * (1.0 if unique_share >= UNIQUE_ENOUGH else 0.5 * unique_share)
    evidence = (
        f"unique per request on {_percent(unique, slots)} of {slots:,} slot rows; "
        f"{_percent(joined, ads)} of {ads:,} ad rows find their slot by it"
    )
    return round(value, 3), evidence


def _ratio(hits: int, total: int) -> float:
    return round(hits / total, 3) if total else 0.0


def _percent(hits: int, total: int) -> str:
    return f"{100 * hits / total:.0f}%" if total else "n/a"
