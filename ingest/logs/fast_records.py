"""The fast path of `ingest.logs.records`: a block parsed by pyarrow's CSV reader.

pyarrow parses a block (every column a string, single-threaded: the reader's pool threads and
the writer already keep the cores busy) several times faster than the csv module. It does not know
the record rules, so its result is used only when it can be shown to be what
`ingest.logs.records.parse_by_rules` would return: every row has the header's width (a
malformed row is counted), no row is blank, the rows' line spans add up to the block's physical
lines (so no lone CR was taken for a line end), line breaks sit only in columns that may hold
them, no record or value is over the limits, and no quote is left open at the end of the file.
A row's physical start line is the block's first line plus the lines taken by the rows before
it (1 + the line breaks inside their values), computed vectorised; a block with no line break
inside a value needs no computing at all. Repeated header rows are dropped here too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ingest.logs.records import (
    BOM_CHAR,
    RawBlock,
    RecordLayout,
    count_byte,
    decode_utf8,
    first_line_longer_than,
    single_array,
)
from ingest.logs.records import physical_lines as lines_in

_ARROW_BLOCK_BYTES = 1 * 1024 * 1024
_QUOTE = b'"'
_NEWLINE = b"\n"


def parse_fast(
    data: bytes | bytearray,
    first_line: int,
    layout: RecordLayout,
    final: str | None,
    physical_lines: int | None = None,
) -> RawBlock | None:
    """The records of `data` (which starts at a record start and ends at a line end or where
    the file ends), or None when `ingest.logs.records.parse_by_rules` must decide.

    `final` says what follows the data when a record cannot continue past its end ("the end of
    the file"); None when more data follows (then the data ends at a newline outside quotes).
    `physical_lines`: the data's, when the caller has counted them already.
    """
    if physical_lines is None:
        physical_lines = lines_in(data)
    # a quote still open at the very end: pyarrow would take the rest as its value
    if final is not None and count_byte(data, _QUOTE) % 2 == 1:
        return None
    if not check_utf8(data, first_line):
        return None
    return _parse_with_arrow(data, first_line, layout, physical_lines)


def check_utf8(data: bytes | bytearray, first_line: int) -> bool:
    """Whether `data` is valid UTF-8; raises `UnreadableFile` naming the line when it is not.

    The whole block at once, as one binary value cast to a string (Arrow's validator, ~10 GB/s
    on this machine): letting pyarrow's CSV converter check every value took a third of the
    parse time. Values are cut at ASCII bytes (separators, quotes, line breaks), which are never
    part of a multi-byte character, so the block is valid exactly when every value is.
    """
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    block = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        block.cast(pa.large_string())
    except pa.ArrowInvalid:
        decode_utf8(data, first_line)  # raises with the exact line
        return False  # Python's decoder disagrees (never seen): the exact parser decides
    return True


def _parse_with_arrow(
    data: bytes | bytearray, first_line: int, layout: RecordLayout, physical_lines: int
) -> RawBlock | None:
    """The block's rows with exact start lines, or None when `parse_by_rules` must decide."""
    names = [f"c{index}" for index in range(layout.width)]
    malformed: list[int] = []

    def count_malformed(_row: object) -> str:
        malformed.append(1)
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=pa_csv.ReadOptions(
                column_names=names, block_size=_ARROW_BLOCK_BYTES, use_threads=False
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=layout.delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=count_malformed,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # checked by check_utf8, ten times faster
            ),
        )
    except pa.ArrowInvalid:
        return None
    if malformed:
        return None
    columns = table.columns
    if _has_blank_rows(columns):
        return None
    consistent, spans = _spans(columns, layout, table.num_rows, physical_lines)
    if not consistent:
        return None
    limits = layout.limits
    if spans is not None and _longest_record(data, spans) > limits.max_record_bytes:
        return None
    may_hold_large = spans is not None or first_line_longer_than(data, limits.max_field_bytes) >= 0
    if may_hold_large and _largest_value(columns) > limits.max_field_bytes:
        return None
    if spans is None:
        lines = pa.array(np.arange(first_line, first_line + table.num_rows, dtype=np.int64))
        span_array = None
    else:
        lines = pa.array(np.cumsum(spans) - spans + first_line)
        span_array = pa.array(spans)
    block = RawBlock(columns, lines, [], physical_lines, span_array)
    return _without_repeated_headers(block, layout.header)


def _has_blank_rows(columns: list[pa.ChunkedArray]) -> bool:
    """Rows with every value empty: pyarrow's reading of a blank line (the csv module skips it)."""
    maybe = pc.equal(columns[0], "")
    if not pc.any(maybe).as_py():
        return False
    for column in columns[1:]:
        maybe = pc.and_(maybe, pc.equal(column, ""))
    return bool(pc.any(maybe).as_py())


def _spans(
    columns: list[pa.ChunkedArray], layout: RecordLayout, rows: int, physical_lines: int
) -> tuple[bool, np.ndarray | None]:
    """(whether the rows obey the rules and account for every line exactly, the lines of each
    row or None when every row is one line). A lone CR that pyarrow took for a line end, or a
    line break where the rules allow none, makes the first False."""
    if rows == physical_lines:  # no value holds a line break
        return True, None
    spans = np.ones(rows, dtype=np.int64)
    for position, column in enumerate(columns):
        breaks = pc.count_substring(column, "\n").to_numpy()
        if not layout.may_break(position) and breaks.any():
            return False, None
        spans += breaks
    if int(spans.sum()) != physical_lines or int(spans.max()) > layout.limits.max_record_lines:
        return False, None
    return True, spans


def _longest_record(data: bytes | bytearray, spans: np.ndarray) -> int:
    """Bytes of the longest record (line breaks included) of a block whose rows take `spans`."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == _NEWLINE[0])
    if not data.endswith(_NEWLINE):
        ends = np.append(ends, len(data) - 1)
    starts = np.concatenate(([0], ends[:-1] + 1))
    first = np.cumsum(spans) - spans
    return int((ends[first + spans - 1] - starts[first] + 1).max())


def _largest_value(columns: list[pa.ChunkedArray]) -> int:
    return max(int(pc.max(pc.binary_length(column)).as_py() or 0) for column in columns)


def _without_repeated_headers(block: RawBlock, header: tuple[str, ...]) -> RawBlock:
    """The block without rows that repeat the header (a BOM before the first name allowed)."""
    if not block.num_rows:
        return block
    first = block.columns[0]
    repeated = pc.or_(pc.equal(first, header[0]), pc.equal(first, BOM_CHAR + header[0]))
    if not pc.any(repeated).as_py():
        return block
    for column, name in zip(block.columns[1:], header[1:], strict=True):
        repeated = pc.and_(repeated, pc.equal(column, name))
    repeated = single_array(repeated)
    count = repeated.true_count
    if not count:
        return block
    keep = pc.invert(repeated)
    return RawBlock(
        [column.filter(keep) for column in block.columns],
        block.lines.filter(keep),
        block.invalid,
        block.line_count,
        None if block.spans is None else block.spans.filter(keep),
        block.skipped_lines + block.row_lines(repeated),
        block.repeated_headers + count,
    )
