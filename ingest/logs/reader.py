"""Streaming CSV reading of one v4 log file: bounded memory, every physical line accounted for.

The file's text (`ingest.logs.text`: decompressed, NUL-checked, CR-only line ends turned into
LF) is read with the field separator of its header line (comma, tab, semicolon or pipe:
`ingest.logs.dialect`) and cut into blocks of about `block_bytes` that start at a record start
and end on a line end, and each block is parsed by the record rules (`ingest.logs.records`;
pyarrow's parser first, `ingest.logs.fast_records`). A block is normally cut at its last newline
with an even number of `"` before it (RFC 4180 quotes come in pairs, so that newline is outside
quotes).
That cut is only trusted when what is left after it could still be one record (at most
`max_record_bytes`); otherwise the quote parity is wrong (an unclosed or stray quote), and the
block up to its last newline goes straight to the exact parser, which hands back the start of
an incomplete last record to be read again with the next block. Either way the next block
starts at a real record start, so one broken quote costs one slowly parsed block, not a file.

Memory is a few blocks (raw bytes, parsed table, typed columns) whatever the file: a record is
at most `max_record_bytes`, and a physical line longer than that is never held: it is rejected
by streaming past it to its line end, keeping only its start for the reject. 8 MB blocks
measured: 2.5 M rows / 281 MB of CSV in ~5 s at ~370 MB peak RSS (of which ~80 MB is the
interpreter and pyarrow), the same as with 16-32 MB blocks but with less memory.

Line numbers are physical lines (LF-terminated, plus a last line without one), header = 1; the
reader counts every line it passes (`lines_read`), and each block says where each of its lines
went, so the caller can check that nothing was lost.
"""

from __future__ import annotations

import contextlib
import csv
import queue
import threading
from collections.abc import Collection, Generator, Iterator
from typing import BinaryIO, TypeVar

import numpy as np

from ingest.logs.dialect import detect_delimiter
from ingest.logs.fast_records import parse_fast
from ingest.logs.records import (
    EXCERPT_CHARS,
    InvalidRecord,
    RawBlock,
    RecordLayout,
    RecordLimits,
    count_byte,
    decode_utf8,
    first_line_longer_than,
    parse_by_rules,
)
from ingest.logs.text import TextStream, UnreadableFile

__all__ = ["BLOCK_BYTES", "LogFileReader", "RawBlock", "UnreadableFile", "is_log_file"]

BLOCK_BYTES = 8 * 1024 * 1024
_READ_BYTES = 8 * 1024 * 1024
# what the exact parser takes at a time: its Python objects cost ~10x the bytes
_EXACT_PIECE_BYTES = 1024 * 1024
_BACKWARD_LINES = 64  # newlines last_record_boundary tries one by one before going vectorised
_BOM = b"\xef\xbb\xbf"
_QUOTE = b'"'
_NEWLINE = b"\n"
END_OF_FILE = "the end of the file"

SUPPORTED_SUFFIXES = (".csv", ".gz")


def is_log_file(key: str) -> bool:
    """Whether a source object is a v4 log file (`*.csv`, `*.gz`, `*.csv.gz`), not a hidden one."""
    name = key.rsplit("/", 1)[-1]
    return not name.startswith((".", "_")) and name.lower().endswith(SUPPORTED_SUFFIXES)


class LogFileReader:
    """Reads one (possibly gzip-compressed) CSV stream: `header` first, then `blocks()`."""

    def __init__(
        self,
        raw: BinaryIO,
        name: str,
        block_bytes: int = BLOCK_BYTES,
        limits: RecordLimits | None = None,
        delimiter: str | None = None,
    ) -> None:
        self._text = TextStream(raw, name)
        self._block_bytes = block_bytes
        self._read_bytes = min(_READ_BYTES, block_bytes)
        self._limits = limits or RecordLimits()
        self._delimiter = delimiter  # None: the header line's (ingest.logs.dialect)
        self._pending = b""
        self._eof = False
        self._next_line = 1
        self.header: list[str] = self._read_header()
        self.header_lines = self._next_line - 1

    @property
    def delimiter(self) -> str:
        """The field separator: given, or taken from the header line."""
        assert self._delimiter is not None  # set by _read_header at the latest
        return self._delimiter

    @property
    def uncompressed_bytes(self) -> int:
        return self._text.uncompressed_bytes

    @property
    def lines_read(self) -> int:
        """Physical lines read so far, header included (all of them once `blocks()` is done)."""
        return self._next_line - 1

    @property
    def cr_line_ends(self) -> bool:
        """Whether the file ends its lines with a lone CR (read as if they were LF)."""
        return bool(self._text.cr_line_ends)

    def _read(self, size: int) -> bytes:
        chunk = self._text.read(size)
        if not chunk:
            self._eof = True
        return chunk

    def _read_header(self) -> list[str]:
        data = self._read(self._block_bytes).removeprefix(_BOM)
        limit = self._limits.max_record_bytes
        end = _header_end(data)
        while end < 0 and len(data) <= limit and not self._eof:
            data += self._read(self._read_bytes)
            end = _header_end(data)
        if end < 0 and self._eof:
            end = len(data)
        if end < 0 or end > limit:
            raise UnreadableFile(
                f"line 1 has no line break (outside quotes) within {limit:,} bytes, so it is "
                "not a CSV header; is this a CSV file?"
            )
        header_bytes, self._pending = data[:end], data[end:]
        if not header_bytes.strip():
            raise UnreadableFile(
                "the file is empty (no header row); ask for a re-delivery with the header line "
                "and the data"
            )
        text = decode_utf8(header_bytes, first_line=1)
        if self._delimiter is None:
            self._delimiter = detect_delimiter(text)
        header = next(csv.reader([text.rstrip("\r\n")], delimiter=self._delimiter), [])
        if not any(name.strip() for name in header):
            raise UnreadableFile("the first line has no column names; the header row is missing")
        self._next_line = 1 + _physical_lines(header_bytes)
        return header

    def blocks(self, line_break_columns: Collection[int] | None = None) -> Iterator[RawBlock]:
        """Parsed blocks in file order, the next one read and parsed while the caller works.

        `line_break_columns`: positions whose quoted values may hold line breaks (None: all).
        Inflating and pyarrow's parser release the GIL, so reading block n+1 on a background
        thread overlaps validating and writing block n: one more block in memory, ~40 % less
        wall time on two cores.
        """
        layout = RecordLayout(
            tuple(self.header),
            None if line_break_columns is None else frozenset(line_break_columns),
            self._limits,
            self.delimiter,
        )
        return read_ahead(self._parsed_blocks(layout))

    def _parsed_blocks(self, layout: RecordLayout) -> Iterator[RawBlock]:
        limit = self._limits.max_record_bytes
        pending, self._pending = self._pending, b""
        want = self._block_bytes
        while True:
            while not self._eof and len(pending) < want:
                pending += self._read(max(want - len(pending), self._read_bytes))
            if not pending:
                return
            long_line = first_line_longer_than(pending, limit)
            if long_line >= 0:
                if long_line:
                    line = self._next_line + _physical_lines(pending[:long_line])
                    after = f"line {line}, which is too long to be part of a record"
                    yield from self._parse(pending[:long_line], layout, after)
                block, pending = self._skip_long_line(pending[long_line:], layout)
                yield block
                want = self._block_bytes
                continue
            if self._eof:
                yield from self._parse(pending, layout, END_OF_FILE)
                return
            cut = last_record_boundary(pending)
            trusted = cut > 0 and len(pending) - cut <= limit
            if not trusted:
                cut = pending.rfind(_NEWLINE) + 1
            used = 0
            if cut:
                used = yield from self._parse(pending[:cut], layout, None, exact=not trusted)
            pending = pending[used:]
            # nothing complete yet (a record longer than a small block): read more first
            want = self._block_bytes if used else len(pending) + self._read_bytes

    def _parse(
        self, data: bytes, layout: RecordLayout, final: str | None, exact: bool = False
    ) -> Generator[RawBlock, None, int]:
        """The blocks of `data`; returns how many of its bytes they take (all, unless `final`
        is None and the last record goes on after the data)."""
        fast = None if exact else parse_fast(data, self._next_line, layout, final)
        if fast is not None:
            self._next_line += fast.line_count
            yield fast
            return len(data)
        start, piece = 0, _EXACT_PIECE_BYTES
        while start < len(data):
            end = data.find(_NEWLINE, start + piece) + 1 or len(data)
            last = end == len(data)
            block, used = parse_by_rules(
                data[start:end], self._next_line, layout, final if last else None
            )
            self._next_line += block.line_count
            if block.line_count:
                yield block
            taken_all = used == end - start
            start += used
            if last and not taken_all:
                break  # an incomplete record at the end: the caller carries it over
            piece = _EXACT_PIECE_BYTES if used else 2 * piece  # a record longer than a piece
        return start

    def _skip_long_line(self, data: bytes, layout: RecordLayout) -> tuple[RawBlock, bytes]:
        """Reject the line `data` starts with, which is longer than a record may be, reading
        past its end a chunk at a time; returns the reject and the bytes after the line."""
        excerpt = data[: 4 * EXCERPT_CHARS].decode("utf-8", "replace")[:EXCERPT_CHARS]
        newline = data.find(_NEWLINE)
        size, rest = (newline + 1, data[newline + 1 :]) if newline >= 0 else (len(data), b"")
        while newline < 0 and not self._eof:
            chunk = self._read(_READ_BYTES)
            newline = chunk.find(_NEWLINE)
            size += newline + 1 if newline >= 0 else len(chunk)
            rest = chunk[newline + 1 :] if newline >= 0 else b""
        limit = self._limits.max_record_bytes
        record = InvalidRecord(
            self._next_line,
            f"is {size:,} bytes long, over the record limit of {limit:,} bytes (skipped "
            "without being read into memory; its start is in `excerpt`)",
            [],
            1,
            excerpt,
        )
        self._next_line += 1
        return RawBlock.of_invalid(layout.width, [record]), rest


def _physical_lines(data: bytes) -> int:
    if not data:
        return 0
    return data.count(_NEWLINE) + (0 if data.endswith(_NEWLINE) else 1)


T = TypeVar("T")
_ITEM, _DONE, _ERROR = "item", "done", "error"


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """`items`, produced on a background thread at most `depth` items ahead of the consumer.

    An exception in the producer is raised in the consumer where the item would have been.
    Closing the iterator early stops the producer and waits for it, so the source stream is
    never read after the caller has moved on (e.g. closed it).
    """
    handoff: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                handoff.put((_ITEM, item))
                if stop.is_set():
                    return
            handoff.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, who raises it
            handoff.put((_ERROR, exc))

    producer = threading.Thread(target=produce, name="b2p-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == _DONE:
                return
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.05)
        producer.join()


def last_record_boundary(data: bytes) -> int:
    """Index just after the last newline with an even number of quotes before it, or 0."""
    quotes_after = 0
    end = len(data)
    total_quotes = count_byte(data, _QUOTE)
    position = data.rfind(_NEWLINE)
    for _ in range(_BACKWARD_LINES):  # usually the last newline or one just before it
        if position < 0:
            return 0
        quotes_after += data.count(_QUOTE, position + 1, end)
        if (total_quotes - quotes_after) % 2 == 0:
            return position + 1
        end = position + 1
        position = data.rfind(_NEWLINE, 0, position)
    # odd parity for many lines (a stray quote): count the quotes before every newline at once
    codes = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(codes[: position + 1] == _NEWLINE[0])
    quotes_before = np.searchsorted(np.flatnonzero(codes == _QUOTE[0]), newlines)
    even = np.flatnonzero(quotes_before % 2 == 0)
    return int(newlines[even[-1]]) + 1 if len(even) else 0


def first_record_boundary(data: bytes) -> int:
    """Index just after the first newline outside quotes, or len(data) when there is none."""
    end = _header_end(data)
    return len(data) if end < 0 else end


def _header_end(data: bytes) -> int:
    """Index just after the first newline with an even number of quotes before it, or -1."""
    quotes = 0
    start = 0
    position = data.find(_NEWLINE)
    while position >= 0:
        quotes += data.count(_QUOTE, start, position)
        if quotes % 2 == 0:
            return position + 1
        start = position
        position = data.find(_NEWLINE, position + 1)
    return -1
