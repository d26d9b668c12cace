"""The text of a log file cut into pieces that start at a record start, and one piece parsed.

`Cutter` takes the decompressed text (`ingest.logs.text.TextStream`) a window of `block_bytes`
at a time and cuts each window at its last newline with an even number of `"` before it (RFC
4180 quotes come in pairs, so that newline is outside quotes). That cut is only trusted when
what is left after it could still be one record (at most `max_record_bytes`); otherwise the
quote parity is wrong (an unclosed or stray quote), and the window up to its last newline is
marked `exact`: the exact parser reads it (`ingest.logs.records`). A piece is cut from the
window alone, never from what happens to have been read beyond it, so the pieces of a file
are the same however far ahead it is read: this is what makes the parallel reader's output
the serial one's (`ingest.logs.reader.LogFileReader.map_blocks`).

`parse_piece` parses a piece (pyarrow's parser first, `ingest.logs.fast_records`) and says how
many of its bytes the records took: all of them, unless the exact parser finds the last record
going on past the piece. The caller then hands that rest, and every piece cut after it, back
to the cutter (`push_back`), which cuts again from the rest: the next piece starts at a real
record start, so one broken quote costs one slowly parsed piece, not a file.

A physical line longer than `max_record_bytes` never reaches a piece: the cutter rejects it by
streaming past it to its line end, keeping only its start for the reject, once every piece
before it is parsed (`may_skip`), since a record still open before it must end there.

Pieces are decompressed into buffers the cutter reuses (`release`): a fresh 4 MB `bytes` per
block is mmapped and page-faulted afresh, which cost more system time than the parsing of the
block; pyarrow's parsed columns never point into the buffer (they are built by copying).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ingest.logs.fast_records import parse_fast
from ingest.logs.records import (
    EXCERPT_CHARS,
    InvalidRecord,
    RawBlock,
    RecordLayout,
    count_byte,
    first_line_longer_than,
    parse_by_rules,
    physical_lines,
)
from ingest.logs.text import TextStream

_END_OF_FILE = "the end of the file"
_READ_BYTES = 8 * 1024 * 1024  # of a line too long to keep, streamed past at a time
# what the exact parser takes at a time: its Python objects cost ~10x the bytes; each such
# piece is first tried with pyarrow's parser, so one bad record costs 1 MiB of slow parsing
_EXACT_PIECE_BYTES = 1024 * 1024
_BACKWARD_LINES = 64  # newlines last_record_boundary tries one by one before going vectorised
_QUOTE = b'"'
_NEWLINE = b"\n"


@dataclass(frozen=True)
class Piece:
    """Text that starts at a record start, and where it is in the file."""

    data: bytearray
    first_line: int  # physical line of its first byte (header = 1)
    lines: int  # physical lines in it
    final: str | None  # what follows, when a record cannot go on past it ("the end of the file")
    exact: bool  # cut where quote parity could not be trusted: only the exact parser reads it
    window: int  # bytes of text it was cut from


class _Wait:
    """`Cutter.next` has a line to stream past, and pieces before it are not parsed yet."""


WAIT: Final = _Wait()


class Cutter:
    """Pieces of a file's text, in file order (`next`), each for `parse_piece`."""

    def __init__(
        self,
        text: TextStream,
        held: bytes,
        first_line: int,
        layout: RecordLayout,
        block_bytes: int,
    ) -> None:
        self._text = text
        self._held = memoryview(held)  # text to hand out before the stream's
        self.line = first_line  # of the next text to be cut
        self._layout = layout
        self._block_bytes = block_bytes
        self._want = block_bytes
        self._eof = False
        self._long_line_next = False
        self._free: list[bytearray] = []
        self._failure: Exception | None = None  # the stream's, raised again where it happened
        self._zeros = bytes(block_bytes)  # calloc'ed: grows a buffer without touching pages

    def next(self, may_skip: bool) -> Piece | RawBlock | _Wait | None:
        """The next piece, the reject of a line too long to keep (a block), `WAIT` when that
        line comes next but `may_skip` is false, or None at the end of the text."""
        if self._long_line_next:
            if not may_skip:
                return WAIT
            self._long_line_next = False
            return self._skip_long_line()
        limits = self._layout.limits
        while True:
            window = self._fill(self._want)
            if not window:
                self._free.append(window)
                return None
            long_line = first_line_longer_than(window, limits.max_record_bytes)
            if long_line >= 0:
                self._hold(window, long_line)
                self._long_line_next = True
                line = self.line + count_byte(window, _NEWLINE)
                return self._piece(window, f"line {line}, which is too long to be part of a record")
            if self._eof and not self._held:
                return self._piece(window, _END_OF_FILE)
            cut = last_record_boundary(window)
            trusted = cut > 0 and len(window) - cut <= limits.max_record_bytes
            if not trusted:
                cut = window.rfind(_NEWLINE) + 1
            if cut:
                self._hold(window, cut)
                return self._piece(window, None, exact=not trusted)
            # no line end in the window: a record longer than the window, read more first
            self._hold(window, 0)
            self._free.append(window)
            self._want *= 2

    def release(self, piece: Piece) -> None:
        """The piece is parsed: its buffer may hold the next one."""
        self._free.append(piece.data)

    def push_back(self, pieces: list[Piece], used: int) -> None:
        """The first piece's records took only its first `used` bytes: its rest and the later
        pieces (already cut, in order) are cut again, from the rest on."""
        first = pieces[0]
        rest = bytes(first.data[used:])
        self._held = memoryview(b"".join([rest, *(p.data for p in pieces[1:]), self._held]))
        self.line = first.first_line + first.lines - physical_lines(rest)
        self._want = self._block_bytes if used else 2 * first.window
        self._long_line_next = False  # if one was next, it is found again after the rest
        for piece in pieces:
            self.release(piece)

    def _piece(self, window: bytearray, final: str | None, exact: bool = False) -> Piece:
        lines = physical_lines(window)
        piece = Piece(window, self.line, lines, final, exact, self._want)
        self.line += lines
        self._want = self._block_bytes
        return piece

    def _fill(self, size: int) -> bytearray:
        """A buffer with the next `size` bytes of text (fewer at the end of the file)."""
        window = self._buffer(size)
        held = min(len(self._held), size)
        window[:held] = self._held[:held]
        self._held = self._held[held:]
        filled = held
        while filled < size and not self._eof:
            try:
                if self._failure is not None:
                    raise self._failure
                count = self._text.readinto(window, filled, size)
            except Exception as exc:
                # what was read stays, so that text pushed back ends at the same place
                self._failure = exc
                self._held = memoryview(bytes(window[:filled]))
                self._free.append(window)
                raise
            if count:
                filled += count
            else:
                self._eof = True
        del window[filled:]
        return window

    def _buffer(self, size: int) -> bytearray:
        """A buffer of `size` bytes, reused when one is free (its pages already mapped)."""
        while self._free:
            window = self._free.pop()
            try:
                if len(window) < size:
                    window += self._zero_bytes(size - len(window))
                del window[size:]
            except BufferError:  # still exported somewhere (never expected): let it go
                continue
            return window
        return bytearray(self._zero_bytes(size))

    def _zero_bytes(self, size: int) -> memoryview | bytes:
        return memoryview(self._zeros)[:size] if size <= len(self._zeros) else bytes(size)

    def _hold(self, window: bytearray, cut: int) -> None:
        """Keep the window's bytes from `cut` on for the next window; the window ends at it."""
        if cut < len(window):
            rest = bytes(window[cut:])
            self._held = memoryview(rest + self._held) if self._held else memoryview(rest)
            del window[cut:]

    def _skip_long_line(self) -> RawBlock:
        """Reject the line the held text starts with, which is longer than a record may be,
        reading past its end a chunk at a time."""
        held = self._held
        excerpt = bytes(held[: 4 * EXCERPT_CHARS]).decode("utf-8", "replace")[:EXCERPT_CHARS]
        newline = bytes(held).find(_NEWLINE)
        size = newline + 1 if newline >= 0 else len(held)
        self._held = held[size:]
        while newline < 0 and not self._eof:
            chunk = self._fill(_READ_BYTES)
            newline = chunk.find(_NEWLINE)
            size += newline + 1 if newline >= 0 else len(chunk)
            if newline >= 0:
                self._hold(chunk, newline + 1)
            self._free.append(chunk)
        limit = self._layout.limits.max_record_bytes
        record = InvalidRecord(
            self.line,
            f"is {size:,} bytes long, over the record limit of {limit:,} bytes (skipped "
            "without being read into memory; its start is in `excerpt`)",
            [],
            1,
            excerpt,
        )
        self.line += 1
        return RawBlock.of_invalid(self._layout.width, [record])


def parse_piece(piece: Piece, layout: RecordLayout) -> tuple[list[RawBlock], int]:
    """The blocks of a piece's records, and how many of its bytes they take (all of them,
    unless `piece.final` is None and the last record goes on after the piece)."""
    data = piece.data
    if not data:
        return [], 0
    if not piece.exact:
        fast = parse_fast(data, piece.first_line, layout, piece.final, piece.lines)
        if fast is not None:
            return [fast], len(data)
    blocks: list[RawBlock] = []
    start, size, line = 0, _EXACT_PIECE_BYTES, piece.first_line
    while start < len(data):
        end = data.find(_NEWLINE, start + size) + 1 or len(data)
        last = end == len(data)
        part = data[start:end]
        block, used, exact = _parse_part(
            part, line, layout, piece.final if last else None, try_fast=not piece.exact
        )
        line += block.line_count
        if block.line_count:
            blocks.append(block)
        start += used
        if last and exact and used < len(part):
            break  # an incomplete record at the end: the caller carries it over
        size = _EXACT_PIECE_BYTES if used else 2 * size  # a record longer than a part
    return blocks, start


def _parse_part(
    part: bytearray, line: int, layout: RecordLayout, final: str | None, try_fast: bool
) -> tuple[RawBlock, int, bool]:
    """A part of a piece pyarrow's parser could not take whole: (its block, the bytes taken,
    whether the exact parser read it). Pyarrow's parser up to the part's last trusted cut if
    its result stands, else the exact parser."""
    if try_fast:
        cut = len(part) if final is not None else last_record_boundary(part)
        if cut:
            fast = parse_fast(part[:cut] if cut < len(part) else part, line, layout, final)
            if fast is not None:
                return fast, cut, False
    block, used = parse_by_rules(part, line, layout, final)
    return block, used, True


def last_record_boundary(data: bytes | bytearray) -> int:
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
