"""How a delimited text file is written: delimiter, encoding, byte-order mark, line endings.

`b2p ingest` needs only the delimiter, which it takes from the header line (`detect_delimiter`):
comma, tab, semicolon or pipe, whichever splits the header into the most fields outside quotes
(a tie goes to the earlier one in that list, so a one-column header stays comma-separated).
`b2p inspect` reports the rest (`describe`) from the first bytes of a file, so a feed nobody has
seen shows what it is before it is ingested (ingest reads UTF-8; a BOM is fine).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

DELIMITERS: tuple[str, ...] = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = {codecs.BOM_UTF16_LE: "UTF-16 LE", codecs.BOM_UTF16_BE: "UTF-16 BE"}


def detect_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line into the most fields (outside quotes)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for character in header_line:
        if character == '"':
            quoted = not quoted
        elif not quoted and character in counts:
            counts[character] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] else ","


@dataclass(frozen=True)
class Dialect:
    """What the start of a file says about how it is written."""

    delimiter: str
    encoding: str  # "UTF-8", "ASCII", "UTF-16 LE", "not UTF-8 (...)"
    bom: bool
    line_endings: str  # of the header line: "LF", "CRLF", "CR" or "none"

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


def describe(data: bytes) -> Dialect:
    """The dialect of a file from its first bytes (decompressed), which may end mid-line."""
    for bom, name in _UTF16_BOMS.items():
        if data.startswith(bom):
            return Dialect(",", name, True, "unknown")
    bom = data.startswith(UTF8_BOM)
    body = data[len(UTF8_BOM) :] if bom else data
    first, newline, _ = body.partition(b"\n")
    header_line = first.decode("utf-8", errors="replace")
    # the header's line end: values further on may hold other newlines inside quotes
    ending = line_endings(first + newline) if newline else line_endings(first)
    return Dialect(detect_delimiter(header_line), _encoding(body), bom, ending)


def _encoding(body: bytes) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return "UTF-8"  # the sample ends inside a multi-byte character
        line = 1 + body.count(b"\n", 0, exc.start)
        return f"not UTF-8 (byte 0x{body[exc.start]:02x} on line {line}; Latin-1 or Windows-1252?)"
    return "ASCII" if body.isascii() else "UTF-8"


def line_endings(body: bytes) -> str:
    """LF, CRLF, CR, or mixed with the counts of each."""
    crlf = body.count(b"\r\n")
    lf = body.count(b"\n") - crlf
    cr = body.count(b"\r") - crlf
    kinds = {name: count for name, count in (("LF", lf), ("CRLF", crlf), ("CR", cr)) if count}
    if not kinds:
        return "none"
    if len(kinds) == 1:
        return next(iter(kinds))
    return "mixed (" + ", ".join(f"{count} {name}" for name, count in kinds.items()) + ")"
