"""Streaming CSV reading of one v4 log file: bounded memory, every physical line accounted for.

The file's text (`ingest.logs.text`: decompressed, NUL-checked, CR-only line ends turned into
LF) is read with the field separator of its header line (comma, tab, semicolon or pipe:
`ingest.logs.dialect`), cut into pieces of about `block_bytes` that start at a record start
and end on a line end (`ingest.logs.pieces`), and each piece is parsed by the record rules
(`ingest.logs.records`; pyarrow's parser first, `ingest.logs.fast_records`).

`map_blocks` parses the pieces and runs the caller's work on each parsed block on a pool of
threads (pyarrow's parser and compute kernels release the GIL), handing the results back in
file order. The pieces are a function of the text alone (`ingest.logs.pieces`), and a piece
whose last record goes on past it is cut again with every piece after it, as if read one at a
time, so the results are the same whatever the number of threads; only when they are computed
differs. `blocks()` is the same with the blocks themselves as results.

Memory is a few pieces per thread (raw bytes, parsed table, the caller's typed columns)
whatever the file: a record is at most `max_record_bytes`, and a physical line longer than that
is never held: it is rejected by streaming past it to its line end, keeping only its start for
the reject.

Line numbers are physical lines (LF-terminated, plus a last line without one), header = 1; the
reader counts every line it passes (`lines_read`), and each block says where each of its lines
went, so the caller can check that nothing was lost.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import BinaryIO, TypeVar

from ingest.logs.dialect import detect_delimiter
from ingest.logs.pieces import WAIT, Cutter, Piece, last_record_boundary, parse_piece
from ingest.logs.records import (
    RawBlock,
    RecordLayout,
    RecordLimits,
    decode_utf8,
    physical_lines,
)
from ingest.logs.text import TextStream, UnreadableFile

__all__ = [
    "BLOCK_BYTES",
    "LogFileReader",
    "RawBlock",
    "UnreadableFile",
    "default_threads",
    "is_log_file",
    "last_record_boundary",
]

# Pieces of 4 MB: every piece in flight holds its text, its parsed strings and its typed columns
# (~7x the text at peak). On the 1 GB memory benchmark with 2 threads, 8 MB pieces peaked at
# 287 MB and 4 MB at 229 MB, at the same CPU time on the 368 MB benchmark file (4.4-4.7 CPU-s
# either way). The size does not depend on the threads, so neither do the row groups written.
BLOCK_BYTES = 4 * 1024 * 1024
_READ_BYTES = 8 * 1024 * 1024
# more threads per file than this hold more blocks in memory for little gain: inflating,
# cutting and Parquet writing of a file all run on the caller's one thread, which bounds the gain
MAX_DEFAULT_THREADS = 4
THREADS_VARIABLE = "B2P_INGEST_THREADS"  # the environment's default for --threads
# pieces cut ahead beyond one per thread, so that a thread finding its next piece ready is not
# idle while this one writes
_QUEUED_PIECES = 1
_BOM = b"\xef\xbb\xbf"
_QUOTE = b'"'
_NEWLINE = b"\n"

SUPPORTED_SUFFIXES = (".csv", ".gz")
T = TypeVar("T")


def default_threads(files_at_once: int = 1) -> int:
    """Threads per file when none are given: the cores this process may run on, shared by the
    files read at once, at least 1 and at most MAX_DEFAULT_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_THREADS, cores // max(1, files_at_once)))


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
        self._cutter: Cutter | None = None
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
        return (self._cutter.line if self._cutter is not None else self._next_line) - 1

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
        self._next_line = 1 + physical_lines(header_bytes)
        return header

    def blocks(self, line_break_columns: Collection[int] | None = None) -> Iterator[RawBlock]:
        """The parsed blocks, in file order (`map_blocks` with the blocks as results)."""
        return self.map_blocks(_itself, line_break_columns)

    def map_blocks(
        self,
        work: Callable[[RawBlock], T],
        line_break_columns: Collection[int] | None = None,
        threads: int = 1,
    ) -> Iterator[T]:
        """`work(block)` for every parsed block, in file order.

        `line_break_columns`: positions whose quoted values may hold line breaks (None: all).
        Pieces are parsed and worked on by `threads` threads while this one cuts the next
        pieces (decompressing: the inflater releases the GIL too) and the caller uses the
        results; at most `threads + 1` pieces are in flight. `work` must not depend on what
        other blocks it saw: it runs on several threads at once, and a block it worked on may
        be thrown away when an earlier piece's last record turns out to go on past it.
        """
        if threads < 1:
            raise ValueError("threads must be 1 or more")
        layout = RecordLayout(
            tuple(self.header),
            None if line_break_columns is None else frozenset(line_break_columns),
            self._limits,
            self.delimiter,
        )
        self._cutter = Cutter(self._text, self._pending, self._next_line, layout, self._block_bytes)
        self._pending = b""

        def on_piece(piece: Piece) -> tuple[list[T], int]:
            blocks, used = parse_piece(piece, layout)
            return [work(block) for block in blocks], used

        with ThreadPoolExecutor(threads, thread_name_prefix="b2p-blocks") as pool:
            try:
                yield from _in_file_order(
                    self._cutter, pool, on_piece, work, threads + _QUEUED_PIECES
                )
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


def _itself(block: RawBlock) -> RawBlock:
    return block


def _in_file_order(
    cutter: Cutter,
    pool: ThreadPoolExecutor,
    on_piece: Callable[[Piece], tuple[list[T], int]],
    work: Callable[[RawBlock], T],
    depth: int,
) -> Iterator[T]:
    """The results of every piece, in order, at most `depth` pieces in flight.

    A piece whose last record goes on past it (the exact parser left its rest unread) goes back
    to the cutter with every piece cut after it, whose results are dropped; nothing is cut past
    a piece whose cut could not be trusted until it is parsed, since its rest is likely to come
    back. An error of the cutter (a NUL byte, damaged gzip) counts where it happened: after the
    pieces before it.
    """
    in_flight: deque[tuple[Piece | None, Future[tuple[list[T], int]]]] = deque()
    ended = False
    while True:
        while not ended and len(in_flight) < depth and not _exact_last(in_flight):
            try:
                item = cutter.next(may_skip=not in_flight)
            except Exception as exc:  # raised in its turn, after the pieces before it
                failed: Future[tuple[list[T], int]] = Future()
                failed.set_exception(exc)
                in_flight.append((None, failed))
                ended = True
                break
            if item is WAIT:
                break
            if item is None:
                ended = True
            elif isinstance(item, RawBlock):  # a line too long to keep: nothing is in flight
                yield work(item)
            else:
                assert isinstance(item, Piece)
                in_flight.append((item, pool.submit(on_piece, item)))
        if not in_flight:
            if ended:
                return
            continue
        piece, future = in_flight.popleft()
        results, used = future.result()
        assert piece is not None  # a failed cut raised above
        if used < len(piece.data):
            later = list(in_flight)
            in_flight.clear()
            for _, pending in later:
                pending.cancel()
            wait([pending for _, pending in later])  # their buffers are reused next
            cutter.push_back([piece, *(p for p, _ in later if p is not None)], used)
            ended = False
        else:
            cutter.release(piece)
        yield from results


def _exact_last(in_flight: deque[tuple[Piece | None, Future[tuple[list[T], int]]]]) -> bool:
    return bool(in_flight) and in_flight[-1][0] is not None and in_flight[-1][0].exact


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
