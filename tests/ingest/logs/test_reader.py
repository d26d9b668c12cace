from __future__ import annotations

import csv
import gzip
import io
import random

import pytest

from ingest.logs import pieces as pieces_module
from ingest.logs.fast_records import _parse_with_arrow
from ingest.logs.reader import (
    LogFileReader,
    UnreadableFile,
    first_record_boundary,
    is_log_file,
    last_record_boundary,
)
from ingest.logs.records import RecordLayout, RecordLimits


def read_all(
    data: bytes,
    name: str = "f.csv",
    block_bytes: int = 1 << 20,
    limits: RecordLimits | None = None,
):
    """(header, rows as (line, fields), invalid as (line, reason)) of a whole file."""
    reader = LogFileReader(io.BytesIO(data), name, block_bytes=block_bytes, limits=limits)
    rows: list[tuple[int, list[str]]] = []
    invalid: list[tuple[int, str]] = []
    for block in reader.blocks():
        columns = [column.to_pylist() for column in block.columns]
        for index, line in enumerate(block.lines.to_pylist()):
            rows.append((line, [values[index] for values in columns]))
        invalid.extend((record.line, record.reason) for record in block.invalid)
    return reader.header, rows, invalid


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("2024/06/01/log.csv.gz", True),
        ("log.gz", True),
        ("a/b/LOG.CSV", True),
        ("notes.txt", False),
        ("a/.hidden.csv.gz", False),
        ("a/_SUCCESS.gz", False),
        ("x.parquet", False),
    ],
)
def test_which_objects_are_log_files(key: str, expected: bool) -> None:
    assert is_log_file(key) is expected


def test_boundaries_ignore_newlines_inside_quotes() -> None:
    data = b'a,"x\ny"\nb,"p\nq'
    assert last_record_boundary(data) == data.index(b"\nb") + 1
    assert first_record_boundary(b'"h\n1",h2\nrow\n') == len(b'"h\n1",h2\n')
    assert last_record_boundary(b'"open\nquote') == 0


@pytest.mark.parametrize("block_bytes", [8, 64, 1 << 20])
def test_quoted_fields_crlf_and_exact_lines(block_bytes: int) -> None:
    text = (
        "a,b,c\r\n"  # line 1
        '1,"x, y",plain\r\n'  # line 2
        '2,"say ""hi""",z\r\n'  # line 3
        '3,"multi\r\nline\nvalue",z\r\n'  # lines 4-6
        "4,only two\r\n"  # line 7: ragged
        '5,"a\n\nb",z\n'  # lines 8-10
        "6,after,multi"  # line 11, no final newline
    )
    header, rows, invalid = read_all(text.encode(), block_bytes=block_bytes)
    assert header == ["a", "b", "c"]
    assert rows == [
        (2, ["1", "x, y", "plain"]),
        (3, ["2", 'say "hi"', "z"]),
        (4, ["3", "multi\r\nline\nvalue", "z"]),
        (8, ["5", "a\n\nb", "z"]),
        (11, ["6", "after", "multi"]),
    ]
    assert invalid == [(7, "has 2 fields but the header has 3")]


def test_bom_is_dropped_and_gzip_is_read() -> None:
    data = gzip.compress("\ufeffcol A,colB\n1,2\n".encode())
    header, rows, _ = read_all(data, name="x.csv.gz")
    assert header == ["col A", "colB"]
    assert rows == [(2, ["1", "2"])]


def test_blank_lines_are_skipped_but_counted_for_line_numbers() -> None:
    _, rows, invalid = read_all(b"a,b\n1,2\n\n\r\n3,4\n\n")
    assert rows == [(2, ["1", "2"]), (5, ["3", "4"])]
    assert invalid == []


def test_header_only_file_has_no_rows() -> None:
    header, rows, invalid = read_all(b"a,b\r\n")
    assert (header, rows, invalid) == (["a", "b"], [], [])


FAST_PATH_VALUES = ["plain", "with,comma", 'with "quote"', "new\nline", "cr\r\nlf", ""]
# a blank line inside a value sends the block to the csv-module path
SLOW_PATH_VALUES = [*FAST_PATH_VALUES, "two\r\n\r\nlines"]


@pytest.mark.parametrize("pieces", [FAST_PATH_VALUES, SLOW_PATH_VALUES])
def test_lines_match_an_independent_count_across_block_sizes(
    pieces: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random quoting and embedded newlines: start lines agree with counting while writing."""
    if pieces is FAST_PATH_VALUES:

        def no_fallback(*_args: object) -> None:
            raise AssertionError("the pyarrow path should have handled this block")

        monkeypatch.setattr(pieces_module, "parse_by_rules", no_fallback)
    rng = random.Random(7)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["k", "v", "w"])
    expected: list[tuple[int, list[str]]] = []
    line = 2
    for index in range(300):
        row = [str(index), rng.choice(pieces), rng.choice(pieces)]
        writer.writerow(row)
        expected.append((line, row))
        line += sum(value.count("\n") for value in row) + 1
    data = out.getvalue().encode()
    for block_bytes in (50, 997, 1 << 20):
        _, rows, invalid = read_all(data, block_bytes=block_bytes)
        assert invalid == []
        assert rows == expected


def test_fast_path_handles_embedded_newlines_without_falling_back() -> None:
    data = b'1,"a\nb",3\r\n4,5,6\r\n"7\r\n8",x,y\n9,9,9'
    block = _parse_with_arrow(data, 10, RecordLayout(("a", "b", "c")), 6)
    assert block is not None
    assert block.lines.to_pylist() == [10, 12, 13, 15]


def test_too_many_fields_is_rejected_with_its_line() -> None:
    _, rows, invalid = read_all(b'a,b\n1,"x\ny"\n2,3,4\n5,6\n')
    assert rows == [(2, ["1", "x\ny"]), (5, ["5", "6"])]
    assert invalid == [(4, "has 3 fields but the header has 2")]


def test_non_utf8_names_the_line() -> None:
    data = b"a,b\n1,2\n3,caf\xe9\n"
    with pytest.raises(UnreadableFile, match="line 3 is not valid UTF-8"):
        read_all(data)


def test_non_utf8_header() -> None:
    with pytest.raises(UnreadableFile, match="line 1 is not valid UTF-8"):
        read_all(b"a,\xff\n1,2\n")


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b" , \n"])
def test_empty_or_headerless_files_are_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableFile, match=r"empty|no column names"):
        read_all(data)


def test_not_gzip_and_truncated_gzip() -> None:
    with pytest.raises(UnreadableFile, match="not a valid gzip file"):
        read_all(b"a,b\n1,2\n", name="x.gz")
    whole = gzip.compress(b"a,b\n" + b"1,2\n" * 1000)
    with pytest.raises(UnreadableFile, match="truncated"):
        read_all(whole[: len(whole) // 2], name="x.csv.gz")


def test_uncompressed_bytes_are_counted() -> None:
    text = b"a,b\n" + b"10,20\n" * 50
    reader = LogFileReader(io.BytesIO(gzip.compress(text)), "x.gz", block_bytes=64)
    for _ in reader.blocks():
        pass
    assert reader.uncompressed_bytes == len(text)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_stray_quote_in_an_unquoted_field_keeps_blocks_bounded_and_lines_exact(
    compressed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`5" screen` makes the quote parity odd for the rest of the file; blocks must stay small."""
    block_bytes = 1000
    rows = [["1", '5" screen', "Mozilla/5.0"]]
    rows += [[str(i), f"tv {i}", "x, y" if i % 7 == 0 else "plain"] for i in range(2, 3000)]
    rows.insert(1500, ["1500", 'another 7" one', "z"])  # a second, then a third stray quote
    rows.insert(2000, ["2000", 'and 9" more', "z"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["k", "v", "w"])
    writer.writerows(rows)
    text = out.getvalue()
    for stray in ('5" screen', 'another 7" one', 'and 9" more'):  # written unquoted, as is
        text = text.replace('"' + stray.replace('"', '""') + '"', stray)
    assert text.count('"') == 3 + 2 * text.count('"x, y"')
    data = gzip.compress(text.encode()) if compressed else text.encode()
    sizes = measure_parsed_blocks(monkeypatch)
    limits = RecordLimits(max_record_bytes=2000, max_field_bytes=1000)

    header, got, invalid = read_all(
        data, "f.csv.gz" if compressed else "f.csv", block_bytes, limits
    )

    assert header == ["k", "v", "w"]
    assert invalid == []
    assert got == [(line, row) for line, row in enumerate(rows, start=2)]
    assert len(text) > 50 * block_bytes and len(sizes) > 20
    assert max(sizes) <= block_bytes + 2 * limits.max_record_bytes


def measure_parsed_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the blocks the reader hands to either parser, from now on."""
    sizes: list[int] = []
    for name in ("parse_fast", "parse_by_rules"):
        parse = getattr(pieces_module, name)

        def measured(block: bytes, *args: object, _parse=parse) -> object:
            sizes.append(len(block))
            return _parse(block, *args)

        monkeypatch.setattr(pieces_module, name, measured)
    return sizes


def test_last_record_boundary_far_back_matches_a_plain_count() -> None:
    """After a stray quote the boundary can be many lines back (the vectorised search)."""
    rng = random.Random(3)
    for _ in range(200):
        data = bytes(rng.choice(b'ab,"\n') for _ in range(rng.randrange(0, 2000)))
        expected = 0
        for position in range(len(data)):
            if data[position : position + 1] == b"\n" and data.count(b'"', 0, position) % 2 == 0:
                expected = position + 1
        assert last_record_boundary(data) == expected
    stray = b'k,v\n1,5" screen\n' + b"2,plain\n" * 500
    assert last_record_boundary(stray) == len(b"k,v\n")


def test_a_line_longer_than_a_record_may_be_is_rejected_without_being_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = RecordLimits(max_record_bytes=64 * 1024, max_field_bytes=1024)
    huge = b"1," + b"z" * (20 << 20) + b"\n"  # 20 MB in one line
    data = b"a,b\n" + b"0,before\n" * 3 + huge + b"2,after\n"
    sizes = measure_parsed_blocks(monkeypatch)
    reader = LogFileReader(io.BytesIO(data), "f.csv", block_bytes=256 * 1024, limits=limits)

    blocks = list(reader.blocks())

    invalid = [record for block in blocks for record in block.invalid]
    [record] = invalid
    assert (record.line, record.lines, record.values) == (5, 1, [])
    assert f"is {len(huge):,} bytes long, over the record limit of 65,536 bytes" in record.reason
    assert record.excerpt == "1," + "z" * 198
    rows = [line for block in blocks for line in block.lines.to_pylist()]
    assert rows == [2, 3, 4, 6]
    assert reader.lines_read == 6
    assert max(sizes) <= 256 * 1024 + 2 * limits.max_record_bytes  # never the 20 MB line


def test_a_file_whose_lines_end_in_cr_is_read_with_lines_counted_by_cr() -> None:
    data = b'a,b\r1,"x\ry"\r2,z\r\r3,w'  # old Mac export: CR only, a CR inside a quoted value
    header, rows, invalid = read_all(data, block_bytes=4)
    assert header == ["a", "b"]
    assert rows == [(2, ["1", "x\ny"]), (4, ["2", "z"]), (6, ["3", "w"])]
    assert invalid == []


def test_nul_bytes_quarantine_the_file_before_it_is_read_through() -> None:
    class Zeros(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # a gigabyte of NUL, on demand
            if self.served >= 1 << 30:
                return 0
            buffer[: len(buffer)] = bytes(len(buffer))
            self.served += len(buffer)
            return len(buffer)

    zeros = Zeros()
    with pytest.raises(UnreadableFile, match=r"NUL bytes \(0x00\), the first at byte 0 .*UTF-16"):
        LogFileReader(io.BufferedReader(zeros), "f.csv")
    assert zeros.served <= 16 << 20


def test_trailing_garbage_after_a_gzip_member_gets_its_own_advice() -> None:
    data = gzip.compress(b"a,b\n1,2\n") + b"this is not gzip"
    with pytest.raises(UnreadableFile, match="trailing garbage") as raised:
        read_all(data, name="x.csv.gz")
    assert "re-deliver it gzip-compressed" not in str(raised.value)


def test_concatenated_gzip_members_read_as_one_file_without_the_second_header() -> None:
    data = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"\xef\xbb\xbfa,b\n3,4\n")
    reader = LogFileReader(io.BytesIO(data), "x.csv.gz")
    blocks = list(reader.blocks())
    assert [line for block in blocks for line in block.lines.to_pylist()] == [2, 4]
    assert sum(block.repeated_headers for block in blocks) == 1
    assert sum(block.skipped_lines for block in blocks) == 1


def test_a_first_line_longer_than_a_record_may_be_is_not_a_header() -> None:
    limits = RecordLimits(max_record_bytes=1000, max_field_bytes=100)
    with pytest.raises(UnreadableFile, match=r"line 1 has no line break .* within 1,000 bytes"):
        read_all(b"a" * 5000 + b"\n1\n", limits=limits)
    with pytest.raises(UnreadableFile, match="within 1,000 bytes"):
        read_all(b'a,"b\n' + b"c\n" * 1000, limits=limits)  # a quote that never closes
