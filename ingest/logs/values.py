"""Typing and validation: a block of raw strings becomes the typed lake columns of the contract.

`validate_block` works vectorised with pyarrow.compute and says for every row which column failed
and why (so the row is rejected). Value rules: surrounding whitespace is ignored for typed
values, an empty value is null, a required column must not be empty, strings are stored as
given, doubles must be finite, and event_time must lie in [1970-01-01 00:00:00,
2100-01-01 00:00:00) UTC. An id equal to one of the feed's "no id" values (`-1` unless the
mapping file says otherwise) is null. A contract column the mapping file builds from several
columns (a composite slot key) is their trimmed values, escaped and joined with
`KEY_SEPARATOR`; it is empty (null) when any part is. Unknown columns become `extra_columns`, a
JSON object {normalised header: raw value}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.logs.contract import CONTRACT, KEY_SEPARATOR, Column, HeaderMapping

TIME_FORMATS_HINT = (
    "expected epoch seconds (e.g. 1717243200 or 1717243200.25), 'YYYY-MM-DD HH:MM:SS[.fff]', "
    "ISO-8601 like 2024-06-01T12:00:00Z / 2024-06-01T14:00:00+02:00 or compact "
    "YYYYMMDDHHMMSS like 20240601120000"
)


# Regexes are anchored and applied to whitespace-trimmed values.
_BIGINT = r"^[+-]?[0-9]{1,19}$"
_DOUBLE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_EPOCH = r"^(?P<seconds>[0-9]{1,12})(?:\.(?P<fraction>[0-9]*))?$"
_DATETIME = (
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[ Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<off_h>[0-9]{2}):?(?P<off_m>[0-9]{2})?)?$"
)
# compact UTC `YYYYMMDDHHMMSS[.fff]` is rewritten to `YYYY-MM-DD HH:MM:SS[.fff]` and parsed as
# that (14 digits can never be epoch seconds, which have at most 12)
_COMPACT = r"^([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})(\.[0-9]+)?$"
_COMPACT_AS_WALL = r"\1-\2-\3 \4:\5:\6\7"
_MS_PER_SECOND = 1000
_MS_PER_MINUTE = 60_000
_MS_PER_HOUR = 3_600_000
# event_time must lie in [1970-01-01 00:00:00, 2100-01-01 00:00:00) UTC: the lake partitions by
# hour and Python's datetime cannot hold every parseable value (year 0, year 10000, ...)
EVENT_TIME_MIN_MS = 0
EVENT_TIME_END_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z, exclusive
EVENT_TIME_RANGE_REASON = "is out of range (1970-01-01 .. 2099-12-31)"
NOT_FINITE_REASON = "is not a finite number"


@dataclass(frozen=True)
class Problem:
    """Why the values of one column fail on some rows (`mask` true = row fails)."""

    column: str
    mask: pa.Array  # boolean, no nulls
    reason: str


@dataclass(frozen=True)
class ValidatedBlock:
    columns: dict[str, pa.Array]  # every contract column + extra_columns, all rows
    problems: list[Problem]  # in contract order; a row may fail in several

    def failed_mask(self) -> pa.Array | None:
        """True for rows with any problem; None when every row is good."""
        mask = None
        for problem in self.problems:
            mask = problem.mask if mask is None else pc.or_(mask, problem.mask)
        return mask


def validate_block(raw: Sequence[pa.Array], mapping: HeaderMapping) -> ValidatedBlock:
    """Typed contract columns and per-row problems for raw string columns (file order)."""
    length = len(raw[0]) if raw else 0
    columns: dict[str, pa.Array] = {}
    problems: list[Problem] = []
    for column in CONTRACT:
        if column.name in mapping.built_positions:
            text = built_key([raw[p] for p in mapping.built_positions[column.name]])
        elif column.name in mapping.contract_positions:
            text = raw[mapping.contract_positions[column.name]]
        else:
            columns[column.name] = pa.nulls(length, column.type)
            continue
        null_values = mapping.null_id_values if column.is_id else ()
        values, column_problems = parse_column(column, text, null_values)
        columns[column.name] = values
        problems.extend(column_problems)
    columns["extra_columns"] = extra_columns_json(
        [(name, raw[position]) for name, position in mapping.extra_positions.items()], length
    )
    return ValidatedBlock(columns, problems)


def parse_column(
    column: Column, raw: pa.Array, null_values: Sequence[str] = ()
) -> tuple[pa.Array, list[Problem]]:
    """Values of one column and the rows where they fail, if any; `null_values` (an id's "no
    id" values, e.g. `-1`) become null."""
    numeric_nulls, text_nulls = _split_null_values(null_values)
    if text_nulls:
        raw = _blank_where(raw, pc.is_in(pc.utf8_trim_whitespace(raw), pa.array(text_nulls)))
    nullable = empty_as_null(raw)
    if pa.types.is_string(column.type):
        values = nullable
    else:
        clean = _parse_clean(column.type, nullable)
        if clean is None:
            values, problems = _parse_carefully(column, raw)
            return _null_where_in(values, numeric_nulls), problems
        values = _null_where_in(clean, numeric_nulls)
    if not column.required:
        return values, []
    problem = _problem(column, pc.is_null(values), "is empty but required")
    return values, [problem] if problem else []


def _split_null_values(null_values: Sequence[str]) -> tuple[list[int], list[str]]:
    """Whole-number "no id" values are compared after parsing (cheap, whitespace-proof), any
    other text (`NULL`, `none`) on the trimmed raw text."""
    numeric = [int(v) for v in null_values if re.fullmatch(r"[+-]?[0-9]{1,18}", v)]
    return numeric, [v for v in null_values if not re.fullmatch(r"[+-]?[0-9]{1,18}", v)]


def _null_where_in(values: pa.Array, numbers: Sequence[int]) -> pa.Array:
    if not numbers or not pa.types.is_integer(values.type):
        return values
    hits = pc.is_in(values, pa.array(numbers, values.type))
    if not pc.any(hits).as_py():
        return values
    return pc.if_else(hits, pa.scalar(None, values.type), values)


def _blank_where(raw: pa.Array, mask: pa.Array) -> pa.Array:
    if not pc.any(mask).as_py():
        return raw
    return pc.if_else(mask, "", raw)


def built_key(parts: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """One key per row from several columns: each part trimmed, `\\` and the separator escaped,
    joined with KEY_SEPARATOR; "" (empty, so null) when any part is empty."""
    escaped: list[pa.Array] = []
    present: pa.Array | None = None
    for part in parts:
        text = pc.utf8_trim_whitespace(_as_array(part))
        here = pc.not_equal(text, "")
        present = here if present is None else pc.and_(present, here)
        text = pc.replace_substring(text, "\\", "\\\\")
        escaped.append(pc.replace_substring(text, KEY_SEPARATOR, "\\" + KEY_SEPARATOR))
    joined = pc.binary_join_element_wise(*escaped, KEY_SEPARATOR)
    assert present is not None
    return pc.if_else(present, joined, "")


def empty_as_null(raw: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The strings with "" as null, sharing the value buffers (only a validity bitmap is new)."""
    if isinstance(raw, pa.ChunkedArray):
        return pa.chunked_array([_chunk_empty_as_null(chunk) for chunk in raw.chunks], raw.type)
    return _chunk_empty_as_null(raw)


def _chunk_empty_as_null(raw: pa.Array) -> pa.Array:
    present = pc.not_equal(raw, "")
    missing = len(raw) - present.true_count
    if missing == 0:
        return raw
    if raw.offset != 0 or raw.null_count or present.offset != 0:
        return pc.if_else(present, raw, pa.scalar(None, raw.type))
    _, offsets, data = raw.buffers()
    validity = present.buffers()[1]
    return pa.Array.from_buffers(raw.type, len(raw), [validity, offsets, data], missing)


def _parse_clean(target: pa.DataType, nullable: pa.Array) -> pa.Array | None:
    """Fast path for the usual case: every value in one canonical form, no stray whitespace.

    Returns None when any value needs the careful path. It accepts a subset of what the
    careful path accepts, with the same results, so a row's fate never depends on its block.
    """
    if pa.types.is_timestamp(target):
        return _event_time_clean(nullable)
    try:
        values = pc.cast(nullable, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_floating(target) and not _all(pc.is_finite(values)):
        return None  # nan/inf: the careful path rejects them
    return values


def _event_time_clean(nullable: pa.Array) -> pa.Array | None:
    sample = _first_value(nullable)
    if sample is None:
        return None
    if re.match(r"^[0-9]{14}$", sample):
        if not _all(pc.match_substring_regex(nullable, r"^[0-9]{14}$")):
            return None
        nullable = compact_as_wall(nullable)
        sample = _first_value(nullable)
        assert sample is not None
    for shape, guard, parse in _CLEAN_TIME_FORMATS:
        if re.match(shape, sample):
            if not _all(pc.match_substring_regex(nullable, guard)):
                return None
            try:
                values = parse(nullable)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None  # e.g. Feb 30: let the careful path say which row
            if not _all(_event_time_in_range(values)):
                return None  # the careful path says which rows are out of range
            return values
    return None


def _event_time_in_range(values: pa.Array) -> pa.Array:
    """True where a timestamp lies in the accepted range; null where it is null."""
    as_ms = pc.cast(values, pa.int64())
    return pc.and_(pc.greater_equal(as_ms, EVENT_TIME_MIN_MS), pc.less(as_ms, EVENT_TIME_END_MS))


def _epoch_clean(values: pa.Array) -> pa.Array:
    # ≤ 12 integer + 3 fraction digits fit a double exactly enough that rounding gives the ms
    milliseconds = pc.round(pc.multiply(pc.cast(values, pa.float64()), float(_MS_PER_SECOND)))
    return pc.cast(pc.cast(milliseconds, pa.int64()), pa.timestamp("ms"))


def _wall_clean(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.timestamp("ms"))


def _zoned_clean(values: pa.Array) -> pa.Array:
    utc = pc.cast(values, pa.timestamp("ms", tz="UTC"))
    return pc.cast(pc.cast(utc, pa.int64()), pa.timestamp("ms"))


_CLEAN_WALL = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?"
_CLEAN_TIME_FORMATS: tuple[tuple[str, str, Callable[[pa.Array], pa.Array]], ...] = (
    (r"^[0-9]+(\.[0-9]*)?$", r"^[0-9]{1,12}(\.[0-9]{1,3})?$", _epoch_clean),
    (_CLEAN_WALL + "$", "^" + _CLEAN_WALL + "$", _wall_clean),
    (
        _CLEAN_WALL + r"(Z|[+-][0-9]{2}:?[0-9]{2})$",
        "^" + _CLEAN_WALL + r"(Z|[+-][0-9]{2}:?[0-9]{2})$",
        _zoned_clean,
    ),
)


def _first_value(values: pa.Array) -> str | None:
    for index in range(min(len(values), 64)):
        value = values[index].as_py()
        if value is not None:
            return value
    return None


def _all(mask: pa.Array) -> bool:
    return bool(pc.all(mask, min_count=0).as_py())


def _parse_carefully(column: Column, raw: pa.Array) -> tuple[pa.Array, list[Problem]]:
    """Any accepted form, surrounding whitespace ignored, and which rows fail and why."""
    text = pc.utf8_trim_whitespace(raw)
    empty = pc.equal(text, "")
    # parsed, but not acceptable: rejected with its own reason, stored as null
    unacceptable: pa.Array | None = None
    unacceptable_reason = ""
    if pa.types.is_timestamp(column.type):
        values = parse_event_time(text)
        reason = f"is not a timestamp ({TIME_FORMATS_HINT})"
        unacceptable = pc.invert(_event_time_in_range(values))
        unacceptable_reason = EVENT_TIME_RANGE_REASON
    elif pa.types.is_integer(column.type):
        values = _parse_bigint(text)
        reason = "is not a whole number (bigint)"
    else:
        values = _cast_matching(text, _DOUBLE, pa.float64())
        reason = "is not a number"
        unacceptable = pc.invert(pc.is_finite(values))  # e.g. 1e400 overflows to inf
        unacceptable_reason = NOT_FINITE_REASON
    unparseable = pc.and_(pc.invert(empty), pc.is_null(values))
    problems: list[Problem | None] = [_problem(column, unparseable, reason)]
    if unacceptable is not None:
        unacceptable = pc.fill_null(unacceptable, False)  # unparseable rows are counted above
        values = pc.if_else(unacceptable, pa.scalar(None, values.type), values)
        problems.append(_problem(column, unacceptable, unacceptable_reason))
    if column.required:
        problems.append(_problem(column, empty, "is empty but required"))
    return values, [problem for problem in problems if problem is not None]


def _parse_bigint(text: pa.Array) -> pa.Array:
    """Whole numbers within int64; anything out of range is null (rejected), never wrapped."""
    as_decimal = _cast_matching(text, _BIGINT, pa.decimal128(19, 0))
    in_range = pc.and_(
        pc.greater_equal(as_decimal, pa.scalar(Decimal(-(2**63)), pa.decimal128(19, 0))),
        pc.less_equal(as_decimal, pa.scalar(Decimal(2**63 - 1), pa.decimal128(19, 0))),
    )
    return pc.cast(pc.if_else(in_range, as_decimal, pa.scalar(None, as_decimal.type)), pa.int64())


def _problem(column: Column, mask: pa.Array | None, reason: str) -> Problem | None:
    if mask is None or not pc.any(mask).as_py():
        return None
    return Problem(column.name, mask, reason)


def _cast_matching(text: pa.Array, pattern: str, target: pa.DataType) -> pa.Array:
    matches = pc.match_substring_regex(text, pattern)
    only_valid = pc.if_else(matches, text, pa.scalar(None, pa.string()))
    return pc.cast(only_valid, target)


def compact_as_wall(text: pa.Array) -> pa.Array:
    """`20210218143005[.fff]` → `2021-02-18 14:30:05[.fff]`; other values unchanged."""
    return pc.replace_substring_regex(text, _COMPACT, _COMPACT_AS_WALL)


def parse_event_time(text: pa.Array) -> pa.Array:
    """Timestamps (UTC, ms) for trimmed strings in any accepted format; null where none matches."""
    text = compact_as_wall(text)
    epoch = pc.extract_regex(text, _EPOCH)
    epoch_ms = pc.add(
        pc.multiply(pc.cast(pc.struct_field(epoch, "seconds"), pa.int64()), _MS_PER_SECOND),
        _fraction_ms(pc.struct_field(epoch, "fraction")),
    )
    epoch_ms = pc.if_else(pc.is_valid(epoch), epoch_ms, pa.scalar(None, pa.int64()))

    parts = pc.extract_regex(text, _DATETIME)
    wall = pc.binary_join_element_wise(
        pc.struct_field(parts, "date"), pc.struct_field(parts, "time"), "T"
    )
    wall_seconds = pc.strptime(wall, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    # strptime rolls impossible dates over (Feb 30 → Mar 1); a round trip catches them
    round_trip = pc.equal(pc.strftime(wall_seconds, format="%Y-%m-%dT%H:%M:%S"), wall)
    wall_seconds = pc.if_else(round_trip, wall_seconds, pa.scalar(None, wall_seconds.type))
    wall_ms = pc.add(
        pc.multiply(pc.cast(wall_seconds, pa.int64()), _MS_PER_SECOND),
        _fraction_ms(pc.struct_field(parts, "fraction")),
    )
    utc_ms = pc.subtract(wall_ms, _offset_ms(parts))
    utc_ms = pc.if_else(pc.is_valid(parts), utc_ms, pa.scalar(None, pa.int64()))

    return pc.cast(pc.coalesce(epoch_ms, utc_ms), pa.timestamp("ms"))


def _fraction_ms(fraction: pa.Array) -> pa.Array:
    """'' → 0, '5' → 500, '123456' → 123 (sub-millisecond digits are truncated)."""
    padded = pc.utf8_rpad(pc.if_else(pc.equal(fraction, ""), "0", fraction), width=3, padding="0")
    return pc.cast(pc.utf8_slice_codeunits(padded, 0, 3), pa.int64())


def _offset_ms(parts: pa.Array) -> pa.Array:
    """The UTC offset of each value in ms (0 for Z or no offset)."""
    hours = pc.struct_field(parts, "off_h")
    minutes = pc.struct_field(parts, "off_m")
    hours_ms = pc.multiply(
        pc.cast(pc.if_else(pc.equal(hours, ""), "0", hours), pa.int64()), _MS_PER_HOUR
    )
    minutes_ms = pc.multiply(
        pc.cast(pc.if_else(pc.equal(minutes, ""), "0", minutes), pa.int64()), _MS_PER_MINUTE
    )
    magnitude = pc.add(hours_ms, minutes_ms)
    negative = pc.equal(pc.struct_field(parts, "sign"), "-")
    return pc.if_else(negative, pc.negate(magnitude), magnitude)


def extra_columns_json(extras: Sequence[tuple[str, pa.Array]], length: int) -> pa.Array:
    """One JSON object string per row of the unknown columns; null when the file has none.

    Extra columns are usually low-cardinality (user agents, segments, server names), and so are
    their combinations: then each distinct combination's object is encoded once with json.dumps
    and the column is a dictionary of those objects (indices per row, no string per row: the
    Parquet writer stores the dictionary as it is, instead of hashing ~150 bytes a row again).
    Otherwise each column becomes a `"name":value` member per row (encoded once per distinct
    value where the column has few), joined vectorised. Both give the same strings.
    """
    if not extras:
        return pa.nulls(length, pa.string())
    keys = [
        ("{" if index == 0 else ",") + json.dumps(name) + ":"
        for index, (name, _) in enumerate(extras)
    ]
    encoded = [pc.dictionary_encode(values) for _, values in extras]
    limit = max(64, _DISTINCT_SHARE_FOR_DICTIONARY * length)
    if all(_distinct(column) <= limit for column in encoded):
        objects = _json_objects(keys, encoded, limit)
        if objects is not None:
            return objects
    pieces: list[pa.Array | str] = [
        _json_members(key, values, column, limit)
        for key, (_, values), column in zip(keys, extras, encoded, strict=True)
    ]
    pieces.append("}")
    return pc.binary_join_element_wise(*pieces, "")


# above this share of distinct values a column is encoded row by row (vectorised) instead
_DISTINCT_SHARE_FOR_DICTIONARY = 0.25
_AWKWARD_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _json_objects(
    keys: list[str], encoded: list[pa.Array | pa.ChunkedArray], limit: float
) -> pa.DictionaryArray | None:
    """The objects as a dictionary array, one json.dumps per distinct combination of values;
    None when there are more than `limit` combinations."""
    indices = [_indices(column) for column in encoded]
    combined = indices[0]
    for number, (column, column_indices) in enumerate(zip(encoded[1:], indices[1:], strict=True)):
        if number:  # dense codes before each further product, so that they never overflow
            combined = np.unique(combined, return_inverse=True)[1].astype(np.int64)
        combined = combined * _distinct(column) + column_indices
    distinct, first_rows, rows = np.unique(combined, return_index=True, return_inverse=True)
    if len(distinct) > limit:
        return None
    values = [
        _dictionary(column).take(pa.array(column_indices[first_rows])).to_pylist()
        for column, column_indices in zip(encoded, indices, strict=True)
    ]
    objects = [
        "".join(key + _json_value(value) for key, value in zip(keys, combination, strict=True))
        + "}"
        for combination in zip(*values, strict=True)
    ]
    return pa.DictionaryArray.from_arrays(
        pa.array(rows.astype(np.int32)), pa.array(objects, pa.string())
    )


def _dictionary(encoded: pa.Array | pa.ChunkedArray) -> pa.Array:
    return (encoded.chunks[0] if isinstance(encoded, pa.ChunkedArray) else encoded).dictionary


def _indices(encoded: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The dictionary indices of one encoded column as int64 (chunks share one dictionary)."""
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    parts = [chunk.indices.to_numpy(zero_copy_only=False) for chunk in chunks]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _distinct(encoded: pa.Array | pa.ChunkedArray) -> int:
    if isinstance(encoded, pa.ChunkedArray) and not encoded.num_chunks:
        return 0
    return len(_dictionary(encoded))


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values


def _json_value(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if value else "null"


def _json_members(
    key: str, values: pa.Array | pa.ChunkedArray, encoded: pa.Array | pa.ChunkedArray, limit: float
) -> pa.Array:
    """`key` + the JSON of each row's value (`null` for an empty one)."""
    if _distinct(encoded) > limit:
        return _json_members_row_by_row(key, _as_array(values))
    distinct = _dictionary(encoded)
    members = pa.array([key + _json_value(value) for value in distinct.to_pylist()], pa.string())
    return members.take(pa.array(_indices(encoded)))


def _json_members_row_by_row(key: str, values: pa.Array) -> pa.Array:
    quoted = pc.binary_join_element_wise('"', _json_escape(values), '"', "")
    members = pc.binary_join_element_wise(key, pc.if_else(pc.equal(values, ""), "null", quoted), "")
    awkward = pc.match_substring_regex(values, _AWKWARD_CHARACTERS)
    if not pc.any(awkward).as_py():
        return members
    # control characters other than tab/CR/LF (rare): json.dumps writes them as \u00XX
    rows = pc.indices_nonzero(awkward)
    fixed = [key + _json_value(value) for value in values.take(rows).to_pylist()]
    return pc.replace_with_mask(members, awkward, pa.array(fixed, pa.string()))


def _json_escape(values: pa.Array) -> pa.Array:
    if not pc.any(pc.match_substring_regex(values, r'["\\\n\r\t]')).as_py():
        return values  # the usual case: one scan instead of five replacements
    escaped = pc.replace_substring(values, "\\", "\\\\")
    for raw, replacement in (('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = pc.replace_substring(escaped, raw, replacement)
    return escaped
