"""`b2p dimensions --from-files DIR|s3://…`: the names from companion files instead of the API.

Beside the v4 logs, FreeWheel deliveries can carry one small file per entity that names its ids
(site section, placement, video asset, network, …). Three of them become the same snapshots the
API fetch writes (`ingest.names.snapshots`); by default, at the top of the folder:

    site.csv            id,name            -> dimensions/sites
    site_section.csv    id,name            -> dimensions/site_sections (site_id null)
    series.csv          id,name            -> dimensions/series

A name is kept as delivered: a site section's `|`-separated hierarchy (`Drama|Thrillers`) is its
name. `--files-config FILE` (JSON) changes any of it per entity; every key is optional:

    {"site_sections": {"file": "site_section_*.csv.gz", "id_column": "id",
                       "name_column": "name", "parent_column": "site_id"}}

`file` is a pattern (`*`, `?`) relative to the folder that must match exactly one file; `.gz`
files are decompressed; a file is UTF-8 (a BOM is fine), comma-, tab-, semicolon- or
pipe-separated (whichever splits its header most), with a header row whose names are matched
trimmed and case-insensitively.

All three files are read and checked before any snapshot is written: a missing file, a missing
column, a row with the wrong field count, an id that is not a whole number, or one id with two
names is an error naming the file and line, and every previous snapshot is left as it was.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from ingest.errors import UserError
from ingest.names.snapshots import DIMENSION_SCHEMAS
from ingest.storage import Storage

UNCHANGED = "No dimension snapshot was changed."
_ID_TEXT = re.compile(r"[+-]?[0-9]{1,19}")
_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1
_DELIMITERS = ",\t;|"


@dataclass(frozen=True)
class CompanionFile:
    """Where one entity's names are and which columns hold them."""

    entity: str
    file: str  # pattern relative to the folder
    id_column: str = "id"
    name_column: str = "name"
    parent_column: str | None = None  # site_sections only: the site id


DEFAULT_FILES: tuple[CompanionFile, ...] = (
    CompanionFile("sites", "site.csv"),
    CompanionFile("site_sections", "site_section.csv"),
    CompanionFile("series", "series.csv"),
)
_KEYS = ("file", "id_column", "name_column", "parent_column")


def load_files_config(document: Any, origin: str) -> tuple[CompanionFile, ...]:
    """The default layout with an --files-config document applied; UserError if invalid."""
    if not isinstance(document, Mapping):
        raise UserError(f"{origin}: expected a JSON object with keys sites, site_sections, series")
    unknown = sorted(set(document) - {f.entity for f in DEFAULT_FILES})
    if unknown:
        raise UserError(f"{origin}: unknown entity {', '.join(unknown)}")
    files = []
    for default in DEFAULT_FILES:
        entry = document.get(default.entity, {})
        where = f"{origin} {default.entity}"
        allowed = _KEYS if default.entity == "site_sections" else _KEYS[:3]
        if not isinstance(entry, Mapping) or set(entry) - set(allowed):
            raise UserError(f"{where}: expected an object with keys among {', '.join(allowed)}")
        for key, value in entry.items():
            if not (isinstance(value, str) and value) and not (
                key == "parent_column" and value is None
            ):
                raise UserError(f"{where}: {key!r} must be a non-empty string")
        files.append(replace(default, **entry))
    return tuple(files)


def read_files_config(path: str) -> tuple[CompanionFile, ...]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise UserError(f"cannot read --files-config {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"--files-config {path} is not valid JSON: {exc}") from None
    return load_files_config(document, path)


def read_companion_tables(
    folder: Storage, files: Sequence[CompanionFile] = DEFAULT_FILES
) -> dict[str, pa.Table]:
    """Every entity's snapshot table from its file; UserError naming file and line otherwise."""
    keys = [info.key for info in folder.list()]
    return {spec.entity: _table(folder, spec, _matching(folder, spec, keys)) for spec in files}


def _matching(folder: Storage, spec: CompanionFile, keys: Sequence[str]) -> str:
    found = [k for k in keys if fnmatch.fnmatchcase(k, spec.file) or k == spec.file + ".gz"]
    if len(found) == 1:
        return found[0]
    if not found:
        problem = f"no {spec.entity} file {spec.file} (or {spec.file}.gz) in {folder.uri('')}"
    else:
        problem = f"{len(found)} files match {spec.file} for {spec.entity}: {', '.join(found)}"
    raise UserError(f"{problem}; set {spec.entity}.file in --files-config. {UNCHANGED}")


def _table(folder: Storage, spec: CompanionFile, key: str) -> pa.Table:
    uri = folder.uri(key)
    text = _text(folder.read_bytes(key), uri)
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].strip():
        raise UserError(
            f"{uri} line 1: no header row; expected {spec.id_column},{spec.name_column}"
        )
    delimiter = max(_DELIMITERS, key=lambda d: (lines[0].count(d), -_DELIMITERS.index(d)))
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header = [name.strip().lower() for name in next(reader)]
    wanted = [
        spec.id_column,
        spec.name_column,
        *([spec.parent_column] if spec.parent_column else []),
    ]
    positions = []
    for name in wanted:
        if name.lower() not in header:
            raise UserError(
                f"{uri} line 1: no column {name!r} (the header has {', '.join(header)}); set "
                f"{spec.entity}'s column names in --files-config. {UNCHANGED}"
            )
        positions.append(header.index(name.lower()))
    rows: dict[int, tuple[str | None, int | None, int]] = {}
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise UserError(f"{uri} line {line}: not valid CSV ({exc}). {UNCHANGED}") from None
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise UserError(
                f"{uri} line {line}: {len(row)} fields, the header has {len(header)}. {UNCHANGED}"
            )
        entity_id = _id(row[positions[0]], uri, line, spec.id_column, required=True)
        name = row[positions[1]].strip() or None
        parent = _id(row[positions[2]], uri, line, wanted[2], False) if len(wanted) > 2 else None
        earlier = rows.get(entity_id)
        if earlier is not None and earlier[:2] != (name, parent):
            raise UserError(
                f"{uri} line {line}: id {entity_id} again, with {name!r} where line {earlier[2]} "
                f"has {earlier[0]!r}; one id must have one name. {UNCHANGED}"
            )
        rows.setdefault(entity_id, (name, parent, line))
    return _snapshot(spec.entity, rows)


def _text(data: bytes, uri: str) -> str:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError(f"{uri}: not a valid gzip file ({exc}). {UNCHANGED}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = 1 + data.count(b"\n", 0, exc.start)
        raise UserError(
            f"{uri} line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-export the "
            f"file as UTF-8. {UNCHANGED}"
        ) from None


def _id(text: str, uri: str, line: int, column: str, required: bool) -> Any:
    value = text.strip()
    if not value and not required:
        return None
    if _ID_TEXT.fullmatch(value) and _ID_MIN <= int(value) <= _ID_MAX:
        return int(value)
    raise UserError(
        f"{uri} line {line}, column {column}: {text!r} is not a whole-number id. {UNCHANGED}"
    )


def _snapshot(entity: str, rows: Mapping[int, tuple[str | None, int | None, int]]) -> pa.Table:
    schema = DIMENSION_SCHEMAS[entity]
    ids = sorted(rows)
    columns: list[list[Any]] = [ids, [rows[i][0] for i in ids]]
    if len(schema) > 2:
        columns.append([rows[i][1] for i in ids])
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )
