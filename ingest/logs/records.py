"""Records of one block of CSV text: rows with their exact lines, rejects, and skipped lines.

The record rules (the README's "The log contract" states them for users):

- A record is one physical line (ended by LF; CRLF is one line end). It takes more lines only
  while a quoted value holds line breaks, and only in a column that may hold them: the columns
  outside the contract (user agents, free-text fields). Contract columns hold ids, names,
  times and numbers, which never contain a line break.
- Such a multi-line record stands only if its quote closes, within `max_record_lines` lines and
  `max_record_bytes` bytes, before the end of the file, and the record then has the header's
  number of fields. Otherwise the quote is taken as never closed (an unescaped `"`): the first
  line alone is rejected, and reading starts again at the next line, outside quotes. So a
  broken quote costs its own line, never the well-formed records after it.
- A record with a value over `max_field_bytes` is rejected whole. A physical line over
  `max_record_bytes` never reaches a block: the reader rejects it by streaming past it.
- Blank lines are not records: they are skipped and counted. So is a line that repeats the
  header (files concatenated into one delivery, e.g. a multi-member gzip).

Every physical line of a block ends in exactly one place — a row (`lines`, `spans`), an invalid
record (`InvalidRecord.lines`) or `skipped_lines` — and `line_count` is their sum.

`parse_by_rules` here is the exact parser: it reads a block line by line with the csv module and
decides each record by the rules; when more data follows it may leave an incomplete last record
unread, for the caller to carry into the next block. `ingest.logs.fast_records.parse_fast`
is pyarrow's parser, whose result the reader uses only when it can show that it equals this
one's.
"""

from __future__ import annotations

import csv
import itertools
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.logs.text import UnreadableFile

DEFAULT_MAX_RECORD_BYTES = 1 << 20  # 1 MiB: ~4,000 times a typical v4 record
DEFAULT_MAX_FIELD_BYTES = 128 << 10  # 131,072: the csv module's own default limit
DEFAULT_MAX_RECORD_LINES = 100
EXCERPT_CHARS = 200  # of a line too long to keep, in its reject
BOM_CHAR = "\ufeff"
_NEWLINE = b"\n"


@dataclass(frozen=True)
class RecordLimits:
    """How large a record may be; larger ones are rejected (`b2p ingest --max-record-bytes`…)."""

    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    max_record_lines: int = DEFAULT_MAX_RECORD_LINES

    def __post_init__(self) -> None:
        if min(self.max_record_bytes, self.max_field_bytes, self.max_record_lines) < 1:
            raise ValueError("record limits must be positive")
        if self.max_field_bytes > self.max_record_bytes:
            raise ValueError("the field limit cannot be larger than the record limit")

    @classmethod
    def given(
        cls, record_bytes: int | None, field_bytes: int | None, record_lines: int | None
    ) -> RecordLimits:
        """The limits a user gave, the defaults for the others (the field limit no larger
        than a smaller record limit given alone)."""
        record = record_bytes or DEFAULT_MAX_RECORD_BYTES
        field = field_bytes or min(DEFAULT_MAX_FIELD_BYTES, record)
        return cls(record, field, record_lines or DEFAULT_MAX_RECORD_LINES)


@dataclass(frozen=True)
class RecordLayout:
    """What the records of a file must look like."""

    header: tuple[str, ...]
    line_break_columns: frozenset[int] | None = None  # positions that may hold line breaks
    limits: RecordLimits = field(default_factory=RecordLimits)
    delimiter: str = ","

    @property
    def width(self) -> int:
        return len(self.header)

    def may_break(self, position: int) -> bool:
        return self.line_break_columns is None or position in self.line_break_columns

    def column_name(self, position: int) -> str:
        if position < self.width and self.header[position].strip():
            return self.header[position]
        return f"#{position + 1}"


@dataclass(frozen=True)
class InvalidRecord:
    line: int
    reason: str
    values: list[str]
    lines: int = 1  # physical lines the record takes
    excerpt: str | None = None  # the start of a line too long to keep whole


@dataclass(frozen=True)
class RawBlock:
    """Records of one block: string columns in file order, their start lines, malformed ones."""

    columns: list[pa.Array | pa.ChunkedArray]
    lines: pa.Array | pa.ChunkedArray  # int64, physical start line of each row (header = 1)
    invalid: list[InvalidRecord]
    line_count: int = 0  # physical lines of the block: rows + invalid records + skipped
    spans: pa.Array | None = None  # int64 lines of each row; None when every row is one line
    skipped_lines: int = 0  # blank lines and lines of repeated headers
    repeated_headers: int = 0

    @property
    def num_rows(self) -> int:
        return len(self.lines)

    def row_lines(self, mask: pa.Array | pa.ChunkedArray | None = None) -> int:
        """Physical lines of the rows (of those where `mask` is true)."""
        if mask is None:
            return self.num_rows if self.spans is None else int(pc.sum(self.spans).as_py() or 0)
        if self.spans is None:
            return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)
        return int(pc.sum(self.spans.filter(single_array(mask))).as_py() or 0)

    @classmethod
    def of_invalid(cls, width: int, records: list[InvalidRecord]) -> RawBlock:
        empty = pa.array([], pa.string())
        lines = sum(record.lines for record in records)
        return cls([empty] * width, pa.array([], pa.int64()), records, lines)


def single_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def count_byte(data: bytes | bytearray, byte: bytes) -> int:
    """How often `byte` occurs in `data`: numpy over slices of `_COUNT_SLICE` bytes.

    Three times as fast as bytes.count and without the GIL. Comparing the whole block at once
    would make a temporary as large as the block (megabytes, so mmapped and page-faulted afresh
    on every call: that cost more than the counting); slices below glibc's mmap threshold reuse
    the same heap memory.
    """
    codes = np.frombuffer(data, np.uint8)
    value = byte[0]
    return sum(
        int(np.count_nonzero(codes[start : start + _COUNT_SLICE] == value))
        for start in range(0, len(codes), _COUNT_SLICE)
    )


_COUNT_SLICE = 256 * 1024


def physical_lines(data: bytes | bytearray) -> int:
    """Lines in `data`, a last line without its break included."""
    if not data:
        return 0
    return count_byte(data, _NEWLINE) + (0 if data.endswith(_NEWLINE) else 1)


def first_line_longer_than(data: bytes | bytearray, limit: int) -> int:
    """Start of the first line of `data` longer than `limit` bytes (line break included), or -1.

    Jumps to the last line break within each `limit` bytes, so it costs a few `rfind`s per
    block, not one step per line. A last line without a break counts once it is already longer.
    """
    start = 0
    while len(data) - start > limit:
        newline = data.rfind(_NEWLINE, start, start + limit)
        if newline < 0:
            return start
        start = newline + 1
    return -1


def decode_utf8(data: bytes | bytearray, first_line: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(_NEWLINE, 0, exc.start)
        raise UnreadableFile(
            f"line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-export the file "
            "as UTF-8"
        ) from exc


_END, _LINES, _BYTES, _NO_BREAK = "end", "lines", "bytes", "no line break allowed"


class _LineFeed:
    """Physical lines for the csv module, each with its line break, one record at a time: it
    stops feeding a record at the end of the block, when the record would pass a limit, or
    when the value it would continue is in a column that may not hold a line break."""

    def __init__(self, lines: list[str], sizes: list[int], layout: RecordLayout) -> None:
        self._lines = lines
        self._sizes = sizes
        self._layout = layout
        self.pos = self.start = self._bytes = 0
        self.ran_out: str | None = None

    def begin(self, start: int) -> None:
        self.pos = self.start = start
        self._bytes = 0
        self.ran_out = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        taken = self.pos - self.start
        limits = self._layout.limits
        if self.pos >= len(self._lines):
            self.ran_out = _END
        elif taken >= limits.max_record_lines:
            self.ran_out = _LINES
        elif taken and self._bytes + self._sizes[self.pos] > limits.max_record_bytes:
            self.ran_out = _BYTES
        elif taken == 1 and not self._layout.may_break(self._open_column()):
            self.ran_out = _NO_BREAK
        if self.ran_out:
            raise StopIteration
        self._bytes += self._sizes[self.pos]
        self.pos += 1
        return self._lines[self.pos - 1] + "\n"  # the last line too: the parser needs an end

    def _open_column(self) -> int:
        """The position of the value left open at the end of the record's first line."""
        return len(_fields_of_one_line(self._lines[self.start], self._layout.delimiter)) - 1


def parse_by_rules(
    data: bytes | bytearray, first_line: int, layout: RecordLayout, final: str | None
) -> tuple[RawBlock, int]:
    """The records of `data` and how many of its bytes they take: every record decided by the
    rules, line by line. `final` as for `ingest.logs.fast_records.parse_fast`; when it is None,
    an incomplete last record is left for the caller.

    Runs of one-line records go through one csv reader at C speed; a record whose value runs
    on past its line, or a line the csv module refuses, is decided by a reader fed one line at
    a time (`_LineFeed`), which stops where the rules say the record must stop.
    """
    _widen_csv_field_limit(layout.limits.max_record_bytes)
    lines = decode_utf8(data, first_line).split("\n")
    if data.endswith(_NEWLINE):
        lines.pop()
    sizes = _line_sizes(data, len(lines))
    feed = _LineFeed(lines, sizes, layout)
    careful = csv.reader(feed, delimiter=layout.delimiter, strict=False)
    block = _BlockBuilder(layout, first_line)
    start = 0
    while start < len(lines):
        start = _one_line_records(lines, sizes, start, block)
        if start == len(lines):
            break
        feed.begin(start)
        try:
            row, error = next(careful), None
        except csv.Error as exc:
            row, error = None, exc
        taken = feed.pos - start
        if feed.ran_out == _END and final is None:
            break  # the record goes on in data not read yet: the caller carries it over
        if feed.ran_out or (taken > 1 and (error or _breaks_a_rule(row, layout))):
            block.broken(start, lines[start], feed.ran_out, row, taken, final)
            start += 1
            continue
        if error is not None:
            block.invalid(start, _csv_error_reason(error), [], taken)
        elif not row:
            block.skip(start, taken)
        else:
            block.record(start, row, taken, sum(sizes[start : start + taken]))
        start += taken
    return block.build(start), sum(sizes[:start])


def _one_line_records(lines: list[str], sizes: list[int], start: int, block: _BlockBuilder) -> int:
    """Records of one line each, from line `start` on, into `block`; returns the first line
    that needs the careful reader (a value running on past its line, a line the csv module
    refuses), or the number of lines."""
    layout = block.layout
    reader = csv.reader(
        map(operator.add, itertools.islice(lines, start, None), itertools.repeat("\n")),
        delimiter=layout.delimiter,
        strict=False,
    )
    position = start
    try:
        for row in reader:
            # more lines read than records, or a value still open at the last line (the line
            # break given to the csv module went into it)
            if reader.line_num != position - start + 1 or (row and row[-1].endswith("\n")):
                return position
            if row:
                block.record(position, row, 1, sizes[position])
            else:
                block.skip(position, 1)
            position += 1
    except csv.Error:
        return position
    return position


def _widen_csv_field_limit(size: int) -> None:
    # The csv module's field limit is process-wide; the rules check value sizes themselves, so
    # it only has to be no smaller than a whole record.
    if csv.field_size_limit() < size:
        csv.field_size_limit(size)


def _line_sizes(data: bytes | bytearray, count: int) -> list[int]:
    """Bytes of each physical line of `data`, its line break included."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == _NEWLINE[0]) + 1
    bounds = np.concatenate(([0], ends, [len(data)] if len(ends) < count else []))
    return [int(size) for size in np.diff(bounds)]


def _breaks_a_rule(row: list[str] | None, layout: RecordLayout) -> bool:
    """Whether a record read over several lines cannot stand: a line break in a column that
    may not hold one, or not the header's number of fields."""
    if row is None or len(row) != layout.width:
        return True
    return any("\n" in value for p, value in enumerate(row) if not layout.may_break(p))


def _csv_error_reason(error: csv.Error) -> str:
    if "new-line character" in str(error):
        return (
            "holds a carriage return (CR) outside quotes; in CSV a CR belongs only to a CRLF "
            "line end or inside a quoted value"
        )
    return f"cannot be parsed as CSV ({error})"


class _BlockBuilder:
    """Collects what `parse_by_rules` decides, line by line, into a `RawBlock`."""

    def __init__(self, layout: RecordLayout, first_line: int) -> None:
        self.layout = layout
        self._first_line = first_line
        self._header_starts = (layout.header[0], BOM_CHAR + layout.header[0])
        self._rows: list[list[str]] = []
        self._lines: list[int] = []
        self._spans: list[int] = []
        self._invalid: list[InvalidRecord] = []
        self._skipped = 0
        self._headers = 0

    def record(self, index: int, row: list[str], taken: int, size: int) -> None:
        """A record of `taken` lines and `size` bytes that parsed: a row, unless it repeats
        the header, has the wrong number of fields or a value over the field limit."""
        layout = self.layout
        if row[0] in self._header_starts and _is_header(row, layout.header):
            self.skip(index, taken)
            self._headers += 1
            return
        if len(row) != layout.width:
            reason = f"has {len(row)} fields but the header has {layout.width}"
            self.invalid(index, reason, row, taken)
            return
        if size > layout.limits.max_field_bytes:  # else no value can be over the limit
            reason = _oversized_value(row, layout)
            if reason:
                self.invalid(index, reason, row, taken)
                return
        self._rows.append(row)
        self._lines.append(self._first_line + index)
        self._spans.append(taken)

    def broken(
        self,
        index: int,
        line: str,
        ran_out: str | None,
        row: list[str] | None,
        taken: int,
        final: str | None,
    ) -> None:
        """The record at line `index` opens a quote that does not close properly: that line
        alone is rejected; the caller reads on from the next line."""
        layout, limits = self.layout, self.layout.limits
        values = _fields_of_one_line(line, layout.delimiter)
        column = layout.column_name(len(values) - 1) if values else "?"
        if ran_out == _NO_BREAK:
            why = "does not close on this line, and a contract column cannot hold a line break"
        elif ran_out == _LINES:
            why = f"is not closed within {limits.max_record_lines} lines"
        elif ran_out == _BYTES:
            why = f"is not closed within {limits.max_record_bytes:,} bytes"
        elif ran_out == _END:
            why = f"is not closed before {final}"
        elif values and not layout.may_break(len(values) - 1):
            why = "does not close on this line, and a contract column cannot hold a line break"
        elif row is not None and len(row) != layout.width:
            why = (
                f"makes, closed {taken - 1} line(s) later, a record of {len(row)} fields (the "
                f"header has {layout.width})"
            )
        else:
            why = f"makes, closed {taken - 1} line(s) later, a record that cannot be parsed"
        reason = (
            f"opens a quoted value in column {column} that {why}; taken as a missing closing "
            "quote: this line is rejected and the next line is read as a new record"
        )
        self.invalid(index, reason, values, 1)

    def invalid(self, index: int, reason: str, values: list[str], taken: int) -> None:
        self._invalid.append(InvalidRecord(self._first_line + index, reason, values, taken))

    def skip(self, _index: int, taken: int) -> None:
        self._skipped += taken

    def build(self, line_count: int) -> RawBlock:
        if self._rows:
            columns = [pa.array(values, pa.string()) for values in zip(*self._rows, strict=True)]
        else:
            columns = [pa.array([], pa.string()) for _ in range(self.layout.width)]
        multi_line = any(span != 1 for span in self._spans)
        spans = pa.array(self._spans, pa.int64()) if multi_line else None
        return RawBlock(
            columns,
            pa.array(self._lines, pa.int64()),
            self._invalid,
            line_count,
            spans,
            self._skipped,
            self._headers,
        )


def _oversized_value(row: list[str], layout: RecordLayout) -> str | None:
    limit = layout.limits.max_field_bytes
    sizes = [len(value.encode("utf-8")) for value in row]
    largest = max(range(len(row)), key=sizes.__getitem__)
    if sizes[largest] <= limit:
        return None
    return (
        f"has a value of {sizes[largest]:,} bytes in column {layout.column_name(largest)}, over "
        f"the field limit of {limit:,} bytes"
    )


def _is_header(row: list[str], header: tuple[str, ...]) -> bool:
    if len(row) != len(header) or not row:
        return False
    return row[0].removeprefix(BOM_CHAR) == header[0] and tuple(row[1:]) == header[1:]


def _fields_of_one_line(line: str, delimiter: str) -> list[str]:
    """The fields of one physical line read alone (a value still open at its end, cut there)."""
    try:
        fields = next(csv.reader([line + "\n"], delimiter=delimiter, strict=False), [])
    except csv.Error:
        return []
    if fields and fields[-1].endswith("\n"):
        fields[-1] = fields[-1][:-1].removesuffix("\r")
    return fields
