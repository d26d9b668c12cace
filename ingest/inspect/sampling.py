"""A bounded sample of one delivery file: its first megabytes, parsed the way ingest parses them.

`read_sample` decompresses at most `max_bytes` of a file (it never reads a whole file; a gzip
stream is simply not read further), cuts them at the last record boundary and parses them with
the ingest's own reader (`ingest.logs.reader.LogFileReader`): the same BOM handling, delimiter
detection, quoting, line numbers and malformed-record verdicts as `b2p ingest`. A file ingest
would quarantine as unreadable comes back with that reason in `error`.
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass, field

import pyarrow as pa

from ingest.logs.dialect import Dialect, describe
from ingest.logs.reader import LogFileReader, last_record_boundary
from ingest.logs.records import InvalidRecord
from ingest.logs.text import UnreadableFile, open_gzip
from ingest.storage import Storage

try:  # what ISA-L raises on corrupt data (the reader inflates with it when installed)
    from isal.isal_zlib import error as _InflateError
except ImportError:  # pragma: no cover - depends on the environment
    _InflateError = zlib.error

SAMPLE_BYTES = 8 * 1024 * 1024  # decompressed bytes read per file
_CHUNK = 1024 * 1024


@dataclass
class FileSample:
    """The parsed start of one file (or why it cannot be read)."""

    key: str
    uri: str
    complete: bool = False  # the whole file fit in the sample
    sampled_bytes: int = 0
    error: str | None = None
    dialect: Dialect | None = None
    header: list[str] = field(default_factory=list)
    columns: list[pa.Array] = field(default_factory=list)  # raw strings, file order
    lines: list[int] = field(default_factory=list)  # physical start line of each row
    malformed: list[InvalidRecord] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Records read: parsed rows and malformed ones."""
        return len(self.lines) + len(self.malformed)


def read_sample(source: Storage, key: str, max_bytes: int = SAMPLE_BYTES) -> FileSample:
    sample = FileSample(key, source.uri(key))
    try:
        data, sample.complete = _head(source, key, max_bytes)
    except (gzip.BadGzipFile, zlib.error, _InflateError, EOFError) as exc:
        # only the decompressor's verdicts: a failed read of the source propagates
        sample.error = f"not a readable gzip file ({exc}); re-deliver it, or name it *.csv"
        return sample
    sample.sampled_bytes = len(data)
    sample.dialect = describe(data)
    plain_name = key[: -len(".gz")] if key.lower().endswith(".gz") else key
    try:
        reader = LogFileReader(io.BytesIO(data), plain_name, block_bytes=len(data) + 1)
        sample.header = reader.header
        blocks = list(reader.blocks())
    except UnreadableFile as exc:
        sample.error = str(exc)
        return sample
    width = len(sample.header)
    sample.columns = [
        pa.concat_arrays([_array(block.columns[i]) for block in blocks])
        if blocks
        else pa.array([], pa.string())
        for i in range(width)
    ]
    sample.lines = [line for block in blocks for line in block.lines.to_pylist()]
    sample.malformed = [record for block in blocks for record in block.invalid]
    return sample


def _head(source: Storage, key: str, max_bytes: int) -> tuple[bytes, bool]:
    """The first `max_bytes` decompressed bytes, cut after the last whole record, and whether
    that is the whole file."""
    with source.open_read(key) as raw:
        stream = open_gzip(raw) if key.lower().endswith(".gz") else raw
        parts: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = stream.read(min(_CHUNK, max_bytes + 1 - size))
            if not chunk:
                return b"".join(parts), True
            parts.append(chunk)
            size += len(chunk)
    data = b"".join(parts)[:max_bytes]
    cut = last_record_boundary(data)
    return (data[:cut] if cut else data), False


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
