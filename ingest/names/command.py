"""`b2p dimensions`: site, site section and series names from FreeWheel's Publisher API, or
from the companion name files of a delivery (`--from-files DIR`, `ingest.names.companion_files`).

Fetches all three entities, and only when all three succeed replaces the snapshots
`<lake>/dimensions/{sites,site_sections,series}/<entity>.parquet` (each atomically; see
`ingest.names.snapshots`). A failure leaves every previous snapshot as it was and exits 1.

Credentials: FREEWHEEL_USERNAME/FREEWHEEL_PASSWORD, or `--secret-id` (AWS Secrets Manager,
JSON {"username": ..., "password": ...}).

The v4 resource shapes are only documented to FreeWheel customers, so where each list lives and
which fields hold the id and name is configuration (`--api-config FILE`, JSON). Every key is
optional; these are the defaults:

    {
      "base_url": "https://api.freewheel.tv",
      "token_path": "auth/token",
      "timeout_seconds": 30, "deadline_seconds": 600, "max_attempts": 6,
      "backoff_base_seconds": 0.5, "backoff_max_seconds": 30,
      "api_requests_per_second": 20, "auth_requests_per_second": 3,
      "token_renewal_margin_seconds": 300,
      "page_param": "page", "per_page_param": "per_page", "per_page": 500, "first_page": 1,
      "max_pages": 10000,
      "entities": {
        "sites":         {"path": "services/v4/sites", "items_key": "sites",
                          "id_field": "id", "name_field": "name"},
        "site_sections": {"path": "services/v4/site_sections", "items_key": "site_sections",
                          "id_field": "id", "name_field": "name", "parent_field": "site_id"},
        "series":        {"path": "services/v4/series", "items_key": "series",
                          "id_field": "id", "name_field": "name"}
      }
    }

A page may also be a top-level JSON list (then items_key is not used). items_key, total_key
and the *_field keys are dotted paths ("data.items", "site.id"). An entity may override the
paging keys and add fixed query parameters ("query": {"status": "ACTIVE"}); "total_key" (a
total item count in each page) is optional: paging stops at the first empty page, or earlier
once total_key says every item has been read. A short page does not end the list, because the
API may cap the page size below per_page (without total_key that costs one more request).
Command-line flags win over the file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import pyarrow as pa

from ingest.errors import UserError
from ingest.names.api_errors import FreeWheelApiError
from ingest.names.companion_files import read_companion_tables, read_files_config
from ingest.names.freewheel_api import ClientSettings, FreeWheelClient
from ingest.names.paging import PagedResource, lookup
from ingest.names.secrets import resolve_credentials
from ingest.names.snapshots import DIMENSION_SCHEMAS, write_snapshot
from ingest.storage import Storage, open_storage

log = logging.getLogger(__name__)

ENTITIES = ("sites", "site_sections", "series")

# entity -> (id column, name column, parent site id column or None), as in DIMENSION_SCHEMAS
SNAPSHOT_COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "sites": ("site_id", "site_name", None),
    "site_sections": ("site_section_id", "site_section_name", "site_id"),
    "series": ("series_id", "series_name", None),
}

PAGING_KEYS = ("page_param", "per_page_param", "per_page", "first_page", "max_pages")
CLIENT_KEYS = tuple(f.name for f in fields(ClientSettings))
ENTITY_KEYS = (
    "path",
    "items_key",
    "total_key",
    "query",
    "id_field",
    "name_field",
    "parent_field",
    *PAGING_KEYS,
)
INT_KEYS = {"per_page", "first_page", "max_pages", "max_attempts"}
NUMBER_KEYS = {name for name in CLIENT_KEYS if name not in ("base_url", "token_path")}


@dataclass(frozen=True)
class EntityMapping:
    """Where an entity comes from and which item fields become the snapshot's columns."""

    entity: str
    resource: PagedResource
    id_field: str = "id"
    name_field: str = "name"
    parent_field: str | None = None


@dataclass(frozen=True)
class DimensionsConfig:
    client: ClientSettings
    entities: tuple[EntityMapping, ...]


def default_config() -> DimensionsConfig:
    mappings = tuple(
        EntityMapping(
            entity=entity,
            resource=PagedResource(name=entity, path=f"services/v4/{entity}"),
            parent_field="site_id" if entity == "site_sections" else None,
        )
        for entity in ENTITIES
    )
    return DimensionsConfig(client=ClientSettings(), entities=mappings)


# -- configuration ---------------------------------------------------------------------------


def load_config(document: Mapping[str, Any], source: str = "--api-config") -> DimensionsConfig:
    """The defaults with the keys of an --api-config document applied; UserError if invalid."""
    if not isinstance(document, Mapping):
        raise UserError(f"{source}: expected a JSON object")
    _reject_unknown(document, (*CLIENT_KEYS, *PAGING_KEYS, "entities"), source)
    client_values = {
        key: _checked(key, document[key], source) for key in CLIENT_KEYS if key in document
    }
    paging = {key: _checked(key, document[key], source) for key in PAGING_KEYS if key in document}
    entity_docs = document.get("entities", {})
    if not isinstance(entity_docs, Mapping):
        raise UserError(f"{source}: 'entities' must be a JSON object")
    _reject_unknown(entity_docs, ENTITIES, f"{source} entities")
    base = default_config()
    mappings = tuple(
        _entity_mapping(mapping, paging, entity_docs.get(mapping.entity, {}), source)
        for mapping in base.entities
    )
    return DimensionsConfig(client=replace(base.client, **client_values), entities=mappings)


def _entity_mapping(
    default: EntityMapping, paging: Mapping[str, Any], doc: Any, source: str
) -> EntityMapping:
    where = f"{source} entities.{default.entity}"
    if not isinstance(doc, Mapping):
        raise UserError(f"{where}: expected a JSON object")
    allowed = (
        ENTITY_KEYS
        if default.parent_field
        else tuple(k for k in ENTITY_KEYS if k != "parent_field")
    )
    _reject_unknown(doc, allowed, where)
    values = {key: _checked(key, value, where) for key, value in doc.items()}
    resource_values = {**paging, **{k: v for k, v in values.items() if k in PAGING_KEYS}}
    for key in ("path", "items_key", "total_key", "query"):
        if key in values:
            resource_values[key] = values[key]
    mapping_values = {
        k: values[k] for k in ("id_field", "name_field", "parent_field") if k in values
    }
    return replace(default, resource=replace(default.resource, **resource_values), **mapping_values)


def _reject_unknown(doc: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise UserError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(allowed)}"
        )


def _checked(key: str, value: Any, where: str) -> Any:
    """The value if it has the type `key` needs; a UserError naming the key otherwise."""
    if key == "query":
        if not isinstance(value, Mapping) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in value.values()
        ):
            raise UserError(f"{where}: 'query' must be an object of string or integer values")
        return {str(k): str(v) for k, v in value.items()}
    if key in INT_KEYS:
        lowest = 0 if key == "first_page" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise UserError(f"{where}: {key!r} must be an integer of at least {lowest}")
        return value
    if key in NUMBER_KEYS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise UserError(f"{where}: {key!r} must be a positive number")
        return float(value)
    if key in ("items_key", "total_key") and value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}: {key!r} must be a non-empty string")
    return value


def read_config_file(path: str) -> DimensionsConfig:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UserError(f"cannot read --api-config {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--api-config {path} is not valid JSON: {exc}") from None
    return load_config(document, source=path)


def config_from_args(args: argparse.Namespace) -> DimensionsConfig:
    config = read_config_file(args.api_config) if args.api_config else default_config()
    overrides = {
        "base_url": args.base_url,
        "timeout_seconds": args.timeout_seconds,
        "deadline_seconds": args.deadline_seconds,
    }
    client_values = {
        k: _checked(k, v, "command line") for k, v in overrides.items() if v is not None
    }
    entities = config.entities
    if args.per_page is not None:
        per_page = _checked("per_page", args.per_page, "--per-page")
        entities = tuple(
            replace(m, resource=replace(m.resource, per_page=per_page)) for m in entities
        )
    return DimensionsConfig(client=replace(config.client, **client_values), entities=entities)


# -- fetch and conform -------------------------------------------------------------------------


def fetch_tables(client: FreeWheelClient, mappings: Sequence[EntityMapping]) -> dict[str, pa.Table]:
    """Every entity as a snapshot table; raises UserError naming the entity on the first failure."""
    tables: dict[str, pa.Table] = {}
    for mapping in mappings:
        try:
            items = client.fetch_all(mapping.resource)
            tables[mapping.entity] = items_to_table(mapping, items)
        except FreeWheelApiError as exc:
            log.debug("fetch failed", extra={"fields": {"entity": mapping.entity}}, exc_info=True)
            raise UserError(
                f"could not fetch {mapping.entity} from the FreeWheel API: {exc}. "
                "No dimension snapshot was changed."
            ) from None
    return tables


def items_to_table(mapping: EntityMapping, items: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The snapshot table of one entity: typed columns, one row per id (first seen wins), by id."""
    id_column, name_column, parent_column = SNAPSHOT_COLUMNS[mapping.entity]
    rows: dict[int, tuple[str | None, int | None]] = {}
    duplicates = 0
    for position, item in enumerate(items, start=1):
        item_id = _as_id(mapping, position, mapping.id_field, lookup(item, mapping.id_field))
        if item_id is None:
            raise FreeWheelApiError(
                f"{mapping.entity} item #{position} has no {mapping.id_field!r} "
                f"(its keys: {', '.join(sorted(item))}); set id_field in --api-config"
            )
        if item_id in rows:
            duplicates += 1
            continue
        name = lookup(item, mapping.name_field)
        parent = (
            _as_id(mapping, position, mapping.parent_field, lookup(item, mapping.parent_field))
            if mapping.parent_field
            else None
        )
        rows[item_id] = (None if name is None else str(name), parent)
    if duplicates:
        # pages can shift while an API list changes under us; one row per id keeps joins exact
        log.warning(
            "duplicate ids in API answer, kept the first",
            extra={"fields": {"entity": mapping.entity, "duplicates": duplicates}},
        )
    ids = sorted(rows)
    columns: dict[str, list[Any]] = {
        id_column: ids,
        name_column: [rows[i][0] for i in ids],
    }
    if parent_column:
        columns[parent_column] = [rows[i][1] for i in ids]
    return pa.Table.from_pydict(columns, schema=DIMENSION_SCHEMAS[mapping.entity])


_ID_TEXT = re.compile(r"-?[0-9]+")  # ASCII digits only: str.isdigit() also accepts "²"
_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1  # the snapshots' int64 id columns


def _as_id(mapping: EntityMapping, position: int, field_name: str | None, value: Any) -> int | None:
    if value is None or value == "":
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _ID_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    if number is not None and _ID_MIN <= number <= _ID_MAX:
        return number
    raise FreeWheelApiError(
        f"{mapping.entity} item #{position}: {field_name!r} is {value!r}, not an integer id "
        "(64-bit); check the field mapping in --api-config"
    )


def write_tables(storage: Storage, tables: Mapping[str, pa.Table]) -> dict[str, str]:
    """Replace each snapshot; returns entity -> URI written."""
    written: dict[str, str] = {}
    for entity, table in tables.items():
        key = write_snapshot(storage, entity, table)
        written[entity] = storage.uri(key)
        log.info(
            "dimension snapshot written",
            extra={"fields": {"entity": entity, "rows": table.num_rows, "uri": written[entity]}},
        )
    return written


# -- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument(
        "--lake",
        default=os.environ.get("B2P_LAKE", "lake"),
        help="lake root: a folder or s3://bucket/prefix (default: $B2P_LAKE or ./lake)",
    )
    parser.add_argument("--base-url", help="API base URL (default https://api.freewheel.tv)")
    parser.add_argument(
        "--secret-id",
        help='AWS Secrets Manager secret with {"username", "password"} '
        "(default: FREEWHEEL_USERNAME/FREEWHEEL_PASSWORD from the environment)",
    )
    parser.add_argument("--api-config", metavar="FILE", help="JSON configuration (see below)")
    parser.add_argument(
        "--from-files",
        metavar="DIR",
        help="read the names from companion files in this folder (or s3:// prefix) instead of "
        "the API: site.csv, site_section.csv, series.csv with an id,name header by default",
    )
    parser.add_argument(
        "--files-config",
        metavar="FILE",
        help="JSON: per entity the file pattern and column names for --from-files "
        '(e.g. {"sites": {"file": "sites_*.csv", "id_column": "site_id"}})',
    )
    parser.add_argument(
        "--per-page",
        type=int,
        help="items per page to ask for (default 500); the API may send fewer, paging goes on "
        "until an empty page",
    )
    parser.add_argument(
        "--timeout-seconds", type=float, help="timeout of one HTTP request (default 30)"
    )
    parser.add_argument(
        "--deadline-seconds", type=float, help="time allowed for the whole fetch (default 600)"
    )


def run(args: argparse.Namespace) -> int:
    if args.files_config and not args.from_files:
        raise UserError("--files-config applies to --from-files DIR")
    if args.from_files:
        files = read_files_config(args.files_config) if args.files_config else None
        storage = open_storage(args.lake)
        # every file is read and checked before the first snapshot is written
        tables = read_companion_tables(open_storage(args.from_files), *([files] if files else []))
    else:
        config = config_from_args(args)
        credentials = resolve_credentials(args.secret_id)
        storage = open_storage(args.lake)
        client = FreeWheelClient(config.client, credentials)
        tables = fetch_tables(client, config.entities)
    write_tables(storage, tables)
    counts = {entity: table.num_rows for entity, table in tables.items()}
    log.info("dimensions updated", extra={"fields": counts})
    print(" ".join(f"{entity}={count}" for entity, count in counts.items()))
    return 0
