"""The dimension snapshots of the lake: one Parquet file per entity, replaced whole.

    <lake>/dimensions/sites/sites.parquet                  site_id bigint, site_name string
    <lake>/dimensions/site_sections/site_sections.parquet  site_section_id, site_section_name,
                                                           site_id
    <lake>/dimensions/series/series.parquet                series_id bigint, series_name string

Extra columns are allowed after the required ones. Writers replace a snapshot atomically, so a
failed fetch leaves the previous snapshot in place.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.storage import Storage

DIMENSION_SCHEMAS: dict[str, pa.Schema] = {
    "sites": pa.schema([("site_id", pa.int64()), ("site_name", pa.string())]),
    "site_sections": pa.schema(
        [
            ("site_section_id", pa.int64()),
            ("site_section_name", pa.string()),
            ("site_id", pa.int64()),
        ]
    ),
    "series": pa.schema([("series_id", pa.int64()), ("series_name", pa.string())]),
}


def snapshot_key(entity: str) -> str:
    return f"dimensions/{entity}/{entity}.parquet"


def conform(entity: str, table: pa.Table) -> pa.Table:
    """Required columns first, cast to their types; extra columns kept after them as given."""
    schema = DIMENSION_SCHEMAS[entity]
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(f"{entity} snapshot is missing column(s) {', '.join(missing)}")
    required = [table.column(name).cast(schema.field(name).type) for name in schema.names]
    extras = [name for name in table.column_names if name not in schema.names]
    return pa.table(required + [table.column(name) for name in extras], names=schema.names + extras)


def write_snapshot(storage: Storage, entity: str, table: pa.Table) -> str:
    """Replace the snapshot of `entity` atomically; returns the key written."""
    conformed = conform(entity, table)
    buffer = io.BytesIO()
    pq.write_table(conformed, buffer, compression="zstd")
    key = snapshot_key(entity)
    storage.write_bytes(key, buffer.getvalue())
    return key


def read_snapshot(storage: Storage, entity: str) -> pa.Table:
    return pq.read_table(io.BytesIO(storage.read_bytes(snapshot_key(entity))))
