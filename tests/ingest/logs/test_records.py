"""The record rules, read through `LogFileReader` at several block sizes: broken quotes cost only
their own line, limits reject without swallowing, repeated headers are skipped, and every
physical line is accounted for — checked against counts made here, not by the reader."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

import pytest

from ingest.logs.reader import LogFileReader
from ingest.logs.records import RecordLimits

BLOCK_SIZES = (16, 97, 1 << 20)


@dataclass
class Read:
    header: list[str]
    rows: list[tuple[int, int, list[str]]] = field(default_factory=list)  # line, lines, values
    invalid: list[tuple[int, int, str]] = field(default_factory=list)  # line, lines, reason
    skipped: int = 0
    repeated_headers: int = 0
    header_lines: int = 0
    lines_read: int = 0


def read(
    data: bytes,
    block_bytes: int = 1 << 20,
    limits: RecordLimits | None = None,
    line_break_columns: tuple[int, ...] | None = None,
) -> Read:
    reader = LogFileReader(io.BytesIO(data), "f.csv", block_bytes=block_bytes, limits=limits)
    result = Read(reader.header)
    for block in reader.blocks(line_break_columns):
        columns = [column.to_pylist() for column in block.columns]
        spans = [1] * block.num_rows if block.spans is None else block.spans.to_pylist()
        for index, line in enumerate(block.lines.to_pylist()):
            result.rows.append((line, spans[index], [values[index] for values in columns]))
        result.invalid += [(r.line, r.lines, r.reason) for r in block.invalid]
        result.skipped += block.skipped_lines
        result.repeated_headers += block.repeated_headers
        covered = block.row_lines() + sum(r.lines for r in block.invalid) + block.skipped_lines
        assert covered == block.line_count
    result.header_lines, result.lines_read = reader.header_lines, reader.lines_read
    return result


def physical_lines(data: bytes) -> int:
    """Counted here, independently of the reader: LF-ended lines plus a last one without."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def assert_every_line_once(data: bytes, result: Read) -> None:
    total = physical_lines(data)
    assert result.lines_read == total
    taken = [line for line, span, _ in result.rows for line in range(line, line + span)]
    taken += [line for line, span, _ in result.invalid for line in range(line, line + span)]
    assert len(taken) == len(set(taken))  # no line in two places
    assert all(result.header_lines < line <= total for line in taken)
    assert result.header_lines + len(taken) + result.skipped == total


HEADER = b"transaction_id,event_name,sales_type,note\n"
WELL_FORMED = [f"t{n},slotImpression,DIRECT,fine {n}\n".encode() for n in range(4, 12)]
EXTRA_ONLY = (3,)  # the `note` column: the only one outside the contract


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_an_unclosed_quote_in_a_contract_column_costs_only_its_line(block_bytes: int) -> None:
    """The issue's first case: line 3 opens a quote in sales_type that never closes."""
    data = HEADER + b"t2,slotImpression,HOUSE,ok\n" + b't3,slotImpression,"HOUSE,x\n'
    data += b"".join(WELL_FORMED)

    result = read(data, block_bytes, line_break_columns=EXTRA_ONLY)

    assert [line for line, _, _ in result.rows] == [2, *range(4, 12)]
    assert result.rows[1][2] == ["t4", "slotImpression", "DIRECT", "fine 4"]
    [(line, lines, reason)] = result.invalid
    assert (line, lines) == (3, 1)
    assert "column sales_type" in reason and "cannot hold a line break" in reason
    assert_every_line_once(data, result)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_a_later_quote_does_not_close_an_unclosed_one(block_bytes: int) -> None:
    """A stray quote on line 20 would pair with line 3's: parity alone swallows 4-19."""
    rows = [f't{n},slotImpression,"DIRECT",fine\n'.encode() for n in range(4, 20)]
    data = HEADER + b"t2,a,DIRECT,x\n" + b't3,slotImpression,"HOUSE,x\n' + b"".join(rows)
    data += b't20,slotImpression,DIRECT,5" screen\n'

    result = read(data, block_bytes, line_break_columns=EXTRA_ONLY)

    assert [line for line, _, _ in result.rows] == [2, *range(4, 21)]
    assert result.rows[-1][2][3] == '5" screen'
    assert [(line, lines) for line, lines, _ in result.invalid] == [(3, 1)]
    assert_every_line_once(data, result)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_a_multi_line_value_in_a_free_text_column_is_one_record(block_bytes: int) -> None:
    data = HEADER + b't2,slotImpression,DIRECT,"two\r\nlines, ""quoted"""\r\n' + WELL_FORMED[0]

    result = read(data, block_bytes, line_break_columns=EXTRA_ONLY)

    assert result.rows == [
        (2, 2, ["t2", "slotImpression", "DIRECT", 'two\r\nlines, "quoted"']),
        (4, 1, ["t4", "slotImpression", "DIRECT", "fine 4"]),
    ]
    assert result.invalid == []
    assert_every_line_once(data, result)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_an_unclosed_quote_in_a_free_text_column_is_judged_when_it_closes_or_ends(
    block_bytes: int,
) -> None:
    # closes on line 6 into a record of the wrong width: a missing quote, not a value
    wrong_width = HEADER + b't2,a,DIRECT,"open\n' + b"".join(WELL_FORMED[:3])
    wrong_width += b'x,y,z,closes" here,extra\n' + WELL_FORMED[4]
    # never closes: the end of the file decides
    at_the_end = HEADER + b't2,a,DIRECT,"open\n' + b"".join(WELL_FORMED)
    for data, reason in ((wrong_width, "a record of 5 fields"), (at_the_end, "end of the file")):
        result = read(data, block_bytes, line_break_columns=EXTRA_ONLY)
        assert result.invalid[0][:2] == (2, 1) and reason in result.invalid[0][2]
        assert [line for line, _, _ in result.rows][:3] == [3, 4, 5]
        assert_every_line_once(data, result)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_a_value_over_the_line_limit_is_a_missing_quote(block_bytes: int) -> None:
    limits = RecordLimits(max_record_lines=3)
    within = HEADER + b't2,a,DIRECT,"one\ntwo\nthree"\n' + WELL_FORMED[0]
    over = HEADER + b't2,a,DIRECT,"one\ntwo\nthree\nfour"\n' + WELL_FORMED[0]

    ok = read(within, block_bytes, limits, EXTRA_ONLY)
    broken = read(over, block_bytes, limits, EXTRA_ONLY)

    assert [(line, lines) for line, lines, _ in ok.rows] == [(2, 3), (5, 1)]
    assert [(line, lines) for line, lines, _ in broken.invalid[:1]] == [(2, 1)]
    assert "not closed within 3 lines" in broken.invalid[0][2]
    assert [line for line, _, _ in broken.rows] == [6]  # 3-5 are read again, and rejected
    assert [line for line, _, _ in broken.invalid] == [2, 3, 4, 5]
    assert_every_line_once(over, broken)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_values_and_records_over_the_limits_are_rejected_with_their_lines(
    block_bytes: int,
) -> None:
    limits = RecordLimits(max_record_bytes=200, max_field_bytes=40)
    data = HEADER + b"t2,a,DIRECT," + b"v" * 41 + b"\n"  # value over the field limit
    data += b't3,a,DIRECT,"' + b"w\n" * 100 + b'"\n'  # 202 bytes over 101 lines
    data += b"t104,a,DIRECT," + b"x" * 300 + b"\n"  # one line over the record limit
    data += WELL_FORMED[0]

    result = read(data, block_bytes, limits, EXTRA_ONLY)

    by_line = {line: (lines, reason) for line, lines, reason in result.invalid}
    assert "41 bytes in column note, over the field limit of 40" in by_line[2][1]
    assert "not closed within 200 bytes" in by_line[3][1]
    assert "315 bytes long, over the record limit of 200" in by_line[104][1]
    assert [line for line, _, _ in result.rows] == [105]
    assert_every_line_once(data, result)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_repeated_headers_and_blank_lines_are_skipped_and_counted(block_bytes: int) -> None:
    second = "\ufeff".encode() + HEADER  # the second file of a concatenation, with its BOM
    data = HEADER + WELL_FORMED[0] + b"\n\r\n" + second + WELL_FORMED[1] + HEADER

    result = read(data, block_bytes, line_break_columns=EXTRA_ONLY)

    assert [line for line, _, _ in result.rows] == [2, 6]
    assert result.invalid == []
    assert (result.skipped, result.repeated_headers) == (4, 2)
    assert_every_line_once(data, result)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_a_lone_cr_inside_a_line_rejects_that_line(block_bytes: int) -> None:
    data = HEADER + b"t2,a,DIRECT,x\rt2b,b,c,d\n" + WELL_FORMED[0]

    result = read(data, block_bytes, line_break_columns=EXTRA_ONLY)

    [(line, lines, reason)] = result.invalid
    assert (line, lines) == (2, 1) and "carriage return" in reason
    assert [line for line, _, _ in result.rows] == [3]
    assert_every_line_once(data, result)


FRAGMENTS = ["a", "b,c", '"', '""', ",", "\n", "\r\n", "\r", " ", "é", "x" * 30, '"q,\nr"']


def random_file(rng: random.Random) -> bytes:
    lines = ["k,v,w,free"]
    for _ in range(rng.randrange(1, 40)):
        if rng.random() < 0.1:
            lines.append("k,v,w,free")
        else:
            lines.append("".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(0, 9))))
    text = "\n".join(lines) + rng.choice(["", "\n"])
    return text.encode()


def test_random_hostile_files_account_for_every_line_the_same_at_every_block_size() -> None:
    """Whatever the quoting, each line is a row, in a reject or skipped — exactly once — and
    the pyarrow and csv-module paths (mixed differently at each block size) agree."""
    rng = random.Random(11)
    limits = RecordLimits(max_record_bytes=120, max_field_bytes=60, max_record_lines=4)
    for _ in range(300):
        data = random_file(rng)
        results = [read(data, size, limits, (3,)) for size in (8, 33, 1 << 20)]
        for result in results:
            assert_every_line_once(data, result)
        first = results[0]
        for other in results[1:]:
            assert other.rows == first.rows
            assert other.invalid == first.invalid
            assert other.skipped == first.skipped
