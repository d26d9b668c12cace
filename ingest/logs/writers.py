"""The writers of one ingest attempt: Parquet files per event hour, and the rejects file.

Both write through `Storage.open_write` on an ExitStack the caller owns, so nothing they write is
visible until the caller closes the stack normally (the commit, step 3 of the protocol in
`ingest.logs.lake`); an exception discards everything. Where the files go is the lake's
business (`ingest.logs.lake`): the writers are given their keys.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.logs.contract import LAKE_SCHEMA
from ingest.storage import Storage

# Rows are buffered as Arrow tables (~250 B a row uncompressed) until a partition has a row
# group's worth, and all partitions are flushed once the total passes MAX_BUFFERED_ROWS. 128k
# rows (a few MB of zstd Parquet per row group) keeps that buffer near 35 MB: with 256k/512k
# the 1 GB benchmark peaked ~100 MB higher (benchmarks/ingest_memory.py).
ROW_GROUP_ROWS = 131_072
MAX_BUFFERED_ROWS = ROW_GROUP_ROWS
# Dictionary-encode only columns with few distinct values per file: on the ones that are
# nearly unique (transaction_id, event_time, source_line, video_asset_id, ad_id, ...) a
# dictionary only costs a hash table and a fallback to plain. On the benchmark hour this wrote
# in 0.85 s instead of 1.13 s and 13.8 MB instead of 20.1 MB (docs/performance.md).
DICTIONARY_COLUMNS = (
    "event_name",
    "event_type",
    "time_position_class",
    "sales_type",
    "extra_columns",
    "source_file",
    "site_id",
    "site_section_id",
    "series_id",
    "network_id",
    "placement_id",
    "ad_unit_id",
    "max_slot_duration",
    "ad_duration",
)
# Columns handed to the writer as dictionary arrays: their values repeat over many rows and the
# ingest knows them as a dictionary already (each distinct extra_columns object is encoded once;
# source_file is one value per file), so neither is built, hashed nor held per row.
DICTIONARY_ARRAY_COLUMNS = ("extra_columns", "source_file")
WRITTEN_SCHEMA = pa.schema(
    [
        pa.field(field.name, pa.dictionary(pa.int32(), field.type))
        if field.name in DICTIONARY_ARRAY_COLUMNS
        else field
        for field in LAKE_SCHEMA
    ]
)


class PartitionedWriter:
    """Writes one source's rows into one Parquet file per event hour, bounded in memory.

    Files are opened on `stack` (an ExitStack the caller closes after the whole source was
    read): closing it normally commits every file, an exception discards them all.
    """

    def __init__(
        self, lake: Storage, key_for_hour: Callable[[int], str], stack: contextlib.ExitStack
    ) -> None:
        self._lake = lake
        self._key_for_hour = key_for_hour  # hour start (epoch ms) -> lake key of its file
        self._stack = stack
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._buffers: dict[int, list[pa.Table]] = {}
        self._buffered_rows = 0
        self.rows_written = 0

    @property
    def keys(self) -> list[str]:
        return sorted(self._key_for_hour(hour) for hour in self._writers)

    def write(self, table: pa.Table) -> None:
        """Append rows (LAKE_SCHEMA or WRITTEN_SCHEMA, event_time never null) to their hour
        partitions."""
        if table.num_rows == 0:
            return
        if table.schema != WRITTEN_SCHEMA:
            table = table.cast(WRITTEN_SCHEMA)
        hour_starts = pc.cast(
            pc.floor_temporal(table.column("event_time"), unit="hour"), pa.int64()
        )
        hours = pc.unique(hour_starts).to_pylist()
        if len(hours) == 1:
            self._buffer(hours[0], table)  # the usual block: no copy needed
        else:
            for hour_ms in hours:
                self._buffer(hour_ms, table.filter(pc.equal(hour_starts, hour_ms)))
        if self._buffered_rows > MAX_BUFFERED_ROWS:
            for hour in list(self._buffers):
                self._flush(hour)

    def finish(self) -> None:
        """Write what is buffered; the files commit when the caller's ExitStack closes."""
        for hour in list(self._buffers):
            self._flush(hour)

    def _buffer(self, hour_ms: int, rows: pa.Table) -> None:
        if hour_ms not in self._writers:
            self._writers[hour_ms] = self._open(hour_ms)
            self._buffers[hour_ms] = []
        self._buffers[hour_ms].append(rows)
        self._buffered_rows += rows.num_rows
        if sum(part.num_rows for part in self._buffers[hour_ms]) >= ROW_GROUP_ROWS:
            self._flush(hour_ms)

    def _flush(self, hour_ms: int) -> None:
        parts = self._buffers[hour_ms]
        if not parts:
            return
        # one dictionary per column for the whole row group: with a different one per block the
        # Parquet writer would decode every block and hash its values again
        rows = pa.concat_tables(parts).unify_dictionaries()
        self._writers[hour_ms].write_table(rows, row_group_size=ROW_GROUP_ROWS)
        self._buffers[hour_ms] = []
        self._buffered_rows -= rows.num_rows
        self.rows_written += rows.num_rows

    def _open(self, hour_ms: int) -> pq.ParquetWriter:
        handle: BinaryIO = self._stack.enter_context(
            self._lake.open_write(self._key_for_hour(hour_ms))
        )
        writer = pq.ParquetWriter(
            handle,
            WRITTEN_SCHEMA,
            compression="zstd",
            use_dictionary=list(DICTIONARY_COLUMNS),
            # without the Arrow schema in the footer, readers see the Parquet types alone, so
            # the dictionary columns read back as the strings of LAKE_SCHEMA
            store_schema=False,
        )
        # LIFO: the footer is written before open_write commits (or discards) the file
        self._stack.callback(writer.close)
        return writer


class RejectsWriter:
    """JSON lines of rejected rows, opened on first use on the caller's ExitStack."""

    def __init__(self, lake: Storage, key: str, stack: contextlib.ExitStack) -> None:
        self._lake = lake
        self._key = key
        self._stack = stack
        self._handle: BinaryIO | None = None
        self.count = 0
        self.first_message: str | None = None

    @property
    def key(self) -> str | None:
        return self._key if self._handle is not None else None

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if self._handle is None:
                self._handle = self._stack.enter_context(self._lake.open_write(self._key))
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
            self._handle.write(line.encode("utf-8"))
            self.count += 1
            if self.first_message is None:
                self.first_message = record["message"]
