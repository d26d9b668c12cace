"""The v4 log contract: the columns a file must have, their types, how raw text becomes values.

One table (`CONTRACT`) says everything about a column; the lake schema, the dbt source, the Glue
tables, the README and the sample generator are derived from it (`make contract`,
`ingest.logs.contract_files`). This module matches a file's header to it: header names are
matched after `normalise_header` (trim, camelCase → snake_case, lower-case, spaces/hyphens → `_`),
then through an optional alias mapping (`--column-aliases FILE`); unknown columns are kept in
`extra_columns`; a header name that is blank gets its position as name (`column_<n>`, 1-based).
How raw text becomes typed values is `ingest.logs.values`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingest.errors import UserError


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool
    description: str  # for the dbt source, the README and the Glue catalog


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
        "event_time",
        pa.timestamp("ms"),
        True,
        "When the event happened, UTC: epoch seconds (`1717243200`, `1717243200.25`), "
        "`YYYY-MM-DD HH:MM:SS[.fff]` or ISO-8601 (`T`, optional `Z` or `±HH:MM`); "
        "1970-01-01 .. 2099-12-31, anything else rejects the row.",
    ),
    Column("slot_id", pa.string(), True, "The slot's custom id, unique within a transaction."),
    Column(
        "time_position_class",
        pa.string(),
        True,
        "PREROLL, MIDROLL, PAUSE_MIDROLL, POSTROLL, OVERLAY, DISPLAY, … in any case.",
    ),
    Column("site_id", pa.int64(), False, "FreeWheel site id."),
    Column("site_section_id", pa.int64(), False, "FreeWheel site section id."),
    Column("series_id", pa.int64(), False, "FreeWheel series id."),
    Column("video_asset_id", pa.int64(), False, "FreeWheel video asset id."),
    Column("network_id", pa.int64(), False, "FreeWheel network id."),
    Column("ad_id", pa.int64(), False, "FreeWheel ad id (ad rows)."),
    Column("creative_id", pa.int64(), False, "FreeWheel creative id (ad rows)."),
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
        "monetized (the seed `not_monetized_sales_types`).",
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


def load_aliases(path: str | Path) -> dict[str, str]:
    """Read an alias file: a JSON object {"their header": "contract_name"} or a two-column CSV."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read the column-alias file {file}: {exc.strerror}") from exc
    return parse_aliases(text, origin=str(file))


def parse_aliases(text: str, origin: str) -> dict[str, str]:
    """The aliases of an alias file's text (`origin` names it in errors): JSON when it ends in
    .json or starts with `{`, else a two-column CSV (an optional `from,to` header).

    Keys are normalised like headers, so an alias matches however the file spells it.
    """
    if origin.lower().endswith(".json") or text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"column-alias file {origin} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise UserError(
                f"column-alias file {origin} must be a JSON object like "
                '{"txnId": "transaction_id"}'
            )
        pairs = list(raw.items())
    else:
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
        pairs = [(row[0], row[1]) for row in rows]
    return validate_aliases(pairs, origin=origin)


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


@dataclass(frozen=True)
class HeaderMapping:
    """How a file's columns (by position) map onto the contract."""

    header: tuple[str, ...]  # as written in the file
    contract_positions: dict[str, int]  # contract name -> position in the file
    extra_positions: dict[str, int]  # normalised unknown header -> position


class HeaderError(ValueError):
    """The header is unusable (required column missing, duplicate column): quarantine the file."""


def map_header(header: Sequence[str], aliases: Mapping[str, str] | None = None) -> HeaderMapping:
    aliases = aliases or {}
    contract_positions: dict[str, int] = {}
    extra_positions: dict[str, int] = {}
    for position, raw_name in enumerate(header):
        # a blank name (e.g. a trailing ",,") gets its position: column_<n>, 1-based
        normalised = normalise_header(raw_name) or f"column_{position + 1}"
        name = aliases.get(normalised, normalised)
        target = contract_positions if name in CONTRACT_NAMES else extra_positions
        if name in target:
            raise HeaderError(
                f"columns {target[name] + 1} and {position + 1} both map to {name!r}; "
                "remove one or map it elsewhere with --column-aliases FILE"
            )
        target[name] = position
    missing = [name for name in REQUIRED_NAMES if name not in contract_positions]
    if missing:
        raise HeaderError(
            f"required column(s) {', '.join(missing)} missing from the header "
            f"({', '.join(header)}); if the file names them differently, map them with "
            "--column-aliases FILE"
        )
    return HeaderMapping(tuple(header), contract_positions, extra_positions)
