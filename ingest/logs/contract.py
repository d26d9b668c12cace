"""The v4 log contract: the columns a file must have, their types, how raw text becomes values.

One table (`CONTRACT`) says everything about a column; the lake schema, the dbt source, the Glue
tables, the README and the sample generator are derived from it (`make contract`,
`ingest.logs.contract_files`). This module matches a file's header to it: header names are
matched after `normalise_header` (trim, camelCase → snake_case, lower-case, spaces/hyphens → `_`),
then through an optional alias mapping (`--column-aliases FILE`); unknown columns are kept in
`extra_columns`; a header name that is blank gets its position as name (`column_<n>`, 1-based).
How raw text becomes typed values is `ingest.logs.values`.

The mapping file (`--column-aliases FILE`, `FeedMapping`) says how one feed's files meet the
contract: aliases (their header → contract column), contract columns built from several of
their columns (a composite slot key), the values that mean "no id" (`-1` by default) and the
share of rejected rows past which a file counts as not understood and is quarantined.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ingest.errors import UserError


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool
    description: str  # for the dbt source, the README and the Glue catalog
    is_id: bool = False  # a FreeWheel id: the feed's "no id" values (`-1`) are null


CONTRACT: tuple[Column, ...] = (
    Column("transaction_id", pa.string(), True, "One ad request."),
    Column(
        "event_name",
        pa.string(),
        True,
        "`slotImpression` (an ad break, the slot, started) or `defaultImpression` (an ad "
        "started); other events are kept but unused; any case.",
    ),
    Column(
        "event_type",
        pa.string(),
        False,
        "FreeWheel's event type code as delivered (`i` impression, `c` click, …); kept, not "
        "used by the marts.",
    ),
    Column(
        "event_time",
        pa.timestamp("ms"),
        True,
        "When the event happened, UTC: epoch seconds (`1717243200`, `1717243200.25`), "
        "`YYYY-MM-DD HH:MM:SS[.fff]`, ISO-8601 (`T`, optional `Z` or `±HH:MM`) or compact "
        "`YYYYMMDDHHMMSS` (`20210218143005`); 1970-01-01 .. 2099-12-31, anything else rejects "
        "the row.",
    ),
    Column(
        "slot_id",
        pa.string(),
        True,
        "The slot's id, unique within a transaction: one column, or built from several "
        "(`time_position_class` + `slot_index`) by the mapping file.",
    ),
    Column(
        "time_position_class",
        pa.string(),
        True,
        "PREROLL, MIDROLL, PAUSE_MIDROLL, POSTROLL, OVERLAY, DISPLAY, … in any case.",
    ),
    Column("site_id", pa.int64(), False, "FreeWheel site id.", is_id=True),
    Column("site_section_id", pa.int64(), False, "FreeWheel site section id.", is_id=True),
    Column("series_id", pa.int64(), False, "FreeWheel series id.", is_id=True),
    Column("video_asset_id", pa.int64(), False, "FreeWheel video asset id.", is_id=True),
    Column("network_id", pa.int64(), False, "FreeWheel network id.", is_id=True),
    Column("ad_id", pa.int64(), False, "FreeWheel ad id (ad rows).", is_id=True),
    Column("creative_id", pa.int64(), False, "FreeWheel creative id (ad rows).", is_id=True),
    Column(
        "placement_id",
        pa.int64(),
        False,
        "FreeWheel placement id (ad rows); an ad whose placement is in the seed "
        "`house_placements` is never monetized.",
        is_id=True,
    ),
    Column("ad_unit_id", pa.int64(), False, "FreeWheel ad unit id.", is_id=True),
    Column(
        "max_slot_duration",
        pa.float64(),
        False,
        "Seconds the slot can hold (slotImpression rows); a finite number (`1e400` rejects "
        "the row).",
    ),
    Column("ad_duration", pa.float64(), False, "Seconds of the ad (defaultImpression rows)."),
    Column(
        "sales_type",
        pa.string(),
        False,
        "How the ad was sold, as delivered: HOUSE, PROMO, FILLER, DEFAULT or empty mean not "
        "monetized (the seed `not_monetized_sales_types`); publishers' `sales_channel_type` "
        "(`Direct Sold`, `Reseller Sold`, empty) is this column under another name.",
    ),
)

# What `b2p ingest` adds to every lake row, after the contract's columns.
LINEAGE: tuple[Column, ...] = (
    Column(
        "extra_columns",
        pa.string(),
        False,
        "JSON object of the file's columns the contract does not know.",
    ),
    Column("source_file", pa.string(), False, "URI of the log file the row came from."),
    Column(
        "source_line",
        pa.int64(),
        False,
        "1-based physical line of the record in its file (the header is line 1).",
    ),
    Column("ingested_at", pa.timestamp("ms"), False, "When `b2p ingest` wrote the row (UTC)."),
)


@dataclass(frozen=True)
class PartitionColumn:
    """A Hive partition of the lake: a folder level, not a column inside the Parquet files."""

    name: str
    glue_type: str
    description: str


PARTITIONS: tuple[PartitionColumn, ...] = (
    PartitionColumn("event_date", "date", "Partition column, the UTC date of event_time."),
    PartitionColumn("event_hour", "int", "Partition column, the UTC hour (0-23) of event_time."),
)

CONTRACT_NAMES: frozenset[str] = frozenset(column.name for column in CONTRACT)
REQUIRED_NAMES: tuple[str, ...] = tuple(column.name for column in CONTRACT if column.required)

# The lake schema of v4_events: what the Parquet files hold and dbt and Glue read.
LAKE_SCHEMA: pa.Schema = pa.schema([(column.name, column.type) for column in CONTRACT + LINEAGE])

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s\-]+")


def normalise_header(name: str) -> str:
    """`transactionId`, ` Transaction ID `, `TRANSACTION-ID` → `transaction_id`."""
    text = name.strip()
    text = _CAMEL_BOUNDARY.sub("_", text)
    text = _SEPARATORS.sub("_", text).lower()
    return re.sub(r"_+", "_", text)


# A key of a contract column built from several of the file's columns joins the parts with
# KEY_SEPARATOR, each part trimmed and with `\` and `:` escaped, so the key is never ambiguous
# whatever the parts hold: ("preroll", "1") -> "preroll:1".
KEY_SEPARATOR = ":"
DEFAULT_NULL_ID_VALUES: tuple[str, ...] = ("-1",)
# More than this share of a file's rows rejected: the file was not understood (a column mapped
# wrong, a format nobody told b2p about) and is quarantined instead of ingested (DECISIONLOG.md).
DEFAULT_MAX_REJECTED_SHARE = 0.1
_SETTINGS = ("null_id_values", "max_rejected_share")
BUILDABLE_NAMES: frozenset[str] = frozenset(
    column.name for column in CONTRACT if pa.types.is_string(column.type)
)


@dataclass(frozen=True)
class FeedMapping:
    """How one feed's files meet the contract: the mapping file (`--column-aliases FILE`)."""

    aliases: dict[str, str] = field(default_factory=dict)  # normalised header -> contract name
    built: dict[str, tuple[str, ...]] = field(default_factory=dict)  # contract name -> parts
    null_id_values: tuple[str, ...] = DEFAULT_NULL_ID_VALUES
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE


def as_feed_mapping(mapping: FeedMapping | Mapping[str, str] | None) -> FeedMapping:
    """A FeedMapping; a plain {header: contract column} mapping is aliases alone."""
    if isinstance(mapping, FeedMapping):
        return mapping
    return FeedMapping(aliases=dict(mapping or {}))


def load_aliases(path: str | Path) -> FeedMapping:
    """Read a mapping file: a JSON object or a two-column CSV (see `parse_aliases`)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read the column-alias file {file}: {exc.strerror}") from exc
    return parse_aliases(text, origin=str(file))


def parse_aliases(text: str, origin: str) -> FeedMapping:
    """The mapping in a mapping file's text (`origin` names it in errors): JSON when it ends in
    .json or starts with `{`, else a two-column CSV (an optional `from,to` header).

    JSON: `{"their header": "contract_column", ...}` as always, plus
    `"slot_id": ["time_position_class", "slot_index"]` (a contract column built from several
    columns), `"null_id_values": ["-1"]`, `"max_rejected_share": 0.1`; keys starting with `#`
    are comments. CSV: `their header,contract_column` per line; `a+b,slot_id` builds slot_id.
    Header names are normalised like headers, so an alias matches however the file spells it.
    """
    if origin.lower().endswith(".json") or text.lstrip().startswith("{"):
        return _parse_json_mapping(text, origin)
    rows = [row for row in csv.reader(text.splitlines()) if row and any(row)]
    if rows and [normalise_header(cell) for cell in rows[0][:2]] in (
        ["from", "to"],
        ["alias", "column"],
    ):
        rows = rows[1:]
    if any(len(row) != 2 for row in rows):
        raise UserError(
            f"column-alias file {origin} must have two columns per line: their header, "
            "contract column name"
        )
    pairs = [(row[0], row[1]) for row in rows if "+" not in row[0]]
    built = [(row[1], row[0].split("+")) for row in rows if "+" in row[0]]
    return _feed_mapping(pairs, built, {}, origin)


def _parse_json_mapping(text: str, origin: str) -> FeedMapping:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"column-alias file {origin} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise UserError(
            f'column-alias file {origin} must be a JSON object like {{"txnId": "transaction_id"}}'
        )
    pairs: list[tuple[str, str]] = []
    built: list[tuple[str, Sequence[str]]] = []
    settings: dict[str, object] = {}
    for key, value in raw.items():
        if key.startswith("#"):
            continue  # a comment
        if key in _SETTINGS:
            settings[key] = value
        elif isinstance(value, str):
            pairs.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            built.append((key, value))
        else:
            raise UserError(
                f"column-alias file {origin}: {key!r} must map to a contract column name "
                '("txnId": "transaction_id") or list the columns it is built from '
                f'("slot_id": ["time_position_class", "slot_index"]), not {value!r}; the '
                f"settings are {', '.join(_SETTINGS)}"
            )
    return _feed_mapping(pairs, built, settings, origin)


def _feed_mapping(
    pairs: Sequence[tuple[str, str]],
    built: Sequence[tuple[str, Sequence[str]]],
    settings: Mapping[str, object],
    origin: str,
) -> FeedMapping:
    aliases = validate_aliases(pairs, origin)
    keys: dict[str, tuple[str, ...]] = {}
    for target, parts in built:
        name = normalise_header(target)
        if name not in BUILDABLE_NAMES:
            raise UserError(
                f"{origin}: {target!r} cannot be built from several columns; only the text "
                f"columns can ({', '.join(sorted(BUILDABLE_NAMES))})"
            )
        normalised = tuple(normalise_header(part) for part in parts)
        if not all(normalised) or name in normalised or len(set(normalised)) != len(normalised):
            raise UserError(
                f"{origin}: {target!r} must be built from distinct, named columns other than "
                f"itself, not {list(parts)!r}"
            )
        if name in aliases.values():
            raise UserError(
                f"{origin}: {name!r} is both an alias target and built from {list(parts)!r}; "
                "keep one"
            )
        keys[name] = normalised
    null_ids = settings.get("null_id_values", list(DEFAULT_NULL_ID_VALUES))
    if not isinstance(null_ids, list) or not all(isinstance(v, str) for v in null_ids):
        raise UserError(f'{origin}: "null_id_values" must be a list of strings, e.g. ["-1"]')
    share = settings.get("max_rejected_share", DEFAULT_MAX_REJECTED_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise UserError(f'{origin}: "max_rejected_share" must be a number from 0 to 1')
    return FeedMapping(aliases, keys, tuple(v.strip() for v in null_ids if v.strip()), float(share))


def validate_aliases(pairs: Sequence[tuple[str, str]], origin: str = "aliases") -> dict[str, str]:
    aliases: dict[str, str] = {}
    for their_name, contract_name in pairs:
        target = normalise_header(contract_name)
        if target not in CONTRACT_NAMES:
            known = ", ".join(column.name for column in CONTRACT)
            raise UserError(
                f"{origin}: {contract_name!r} (alias of {their_name!r}) is not a contract column; "
                f"use one of {known}"
            )
        aliases[normalise_header(their_name)] = target
    return aliases


def mapping_document(mapping: FeedMapping, comment: str | None = None) -> str:
    """The JSON text of a mapping file that `parse_aliases` reads back as `mapping`."""
    document: dict[str, object] = {"#": comment} if comment else {}
    document.update(mapping.aliases)
    document.update({name: list(parts) for name, parts in mapping.built.items()})
    document["null_id_values"] = list(mapping.null_id_values)
    if not math.isclose(mapping.max_rejected_share, DEFAULT_MAX_REJECTED_SHARE):
        document["max_rejected_share"] = mapping.max_rejected_share
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class HeaderMapping:
    """How a file's columns (by position) map onto the contract."""

    header: tuple[str, ...]  # as written in the file
    contract_positions: dict[str, int]  # contract name -> position in the file
    extra_positions: dict[str, int]  # normalised unknown header -> position
    built_positions: dict[str, tuple[int, ...]] = field(default_factory=dict)  # name -> parts
    null_id_values: tuple[str, ...] = DEFAULT_NULL_ID_VALUES

    def positions_of(self, name: str) -> tuple[int, ...]:
        """The file positions a contract column's value comes from (several for a built key)."""
        if name in self.built_positions:
            return self.built_positions[name]
        return (self.contract_positions[name],)

    def header_name(self, name: str) -> str:
        """The file's name(s) for a contract column: `txnId`, `time_position_class + slot_index`."""
        return " + ".join(self.header[position] for position in self.positions_of(name))


class HeaderError(ValueError):
    """The header is unusable (required column missing, duplicate column): quarantine the file."""


def map_header(
    header: Sequence[str], mapping: FeedMapping | Mapping[str, str] | None = None
) -> HeaderMapping:
    feed = as_feed_mapping(mapping)
    contract_positions: dict[str, int] = {}
    extra_positions: dict[str, int] = {}
    normalised_positions: dict[str, int] = {}
    for position, raw_name in enumerate(header):
        # a blank name (e.g. a trailing ",,") gets its position: column_<n>, 1-based
        normalised = normalise_header(raw_name) or f"column_{position + 1}"
        normalised_positions.setdefault(normalised, position)
        name = feed.aliases.get(normalised, normalised)
        known = name in CONTRACT_NAMES and name not in feed.built
        target = contract_positions if known else extra_positions
        if name in target:
            raise HeaderError(
                f"columns {target[name] + 1} and {position + 1} both map to {name!r}; "
                "remove one or map it elsewhere with --column-aliases FILE"
            )
        target[name] = position
    built_positions = {
        name: tuple(
            _part_position(name, part, parts, normalised_positions, contract_positions, header)
            for part in parts
        )
        for name, parts in feed.built.items()
    }
    missing = [
        name
        for name in REQUIRED_NAMES
        if name not in contract_positions and name not in built_positions
    ]
    if missing:
        raise HeaderError(
            f"required column(s) {', '.join(missing)} missing from the header "
            f"({', '.join(header)}); if the file names them differently, map them with "
            "--column-aliases FILE (`b2p inspect` proposes a mapping)"
        )
    return HeaderMapping(
        tuple(header), contract_positions, extra_positions, built_positions, feed.null_id_values
    )


def _part_position(
    name: str,
    part: str,
    parts: Sequence[str],
    normalised_positions: Mapping[str, int],
    contract_positions: Mapping[str, int],
    header: Sequence[str],
) -> int:
    """Where a part of a built column is: a header of that name, or the column aliased to it."""
    if part in normalised_positions:
        return normalised_positions[part]
    if part in contract_positions:
        return contract_positions[part]
    raise HeaderError(
        f"{name} is built from {' + '.join(parts)} (--column-aliases), but the header has no "
        f"{part!r} ({', '.join(header)})"
    )
