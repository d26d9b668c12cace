"""Delimiters, encodings and line endings: what `b2p ingest` detects and `b2p inspect` reports."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from ingest.cli import main
from ingest.logs.dialect import describe, detect_delimiter, line_endings
from ingest.logs.lake import source_id_for
from tests.support.v4files import event_files, read_rows, rejects, write_log


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("transaction_id,event_name,event_time", ","),
        ("transaction_id\tevent_name\tevent_time", "\t"),
        ("transaction_id;event_name;event_time", ";"),
        ("transaction_id|event_name|event_time", "|"),
        ('"a;b",c,d', ","),  # a delimiter inside quotes does not count
        ('"a,b";c;d', ";"),
        ("transaction_id", ","),  # one column: nothing to decide, comma
        ("a;b,c", ","),  # a tie goes to the comma
    ],
)
def test_the_delimiter_is_the_one_that_splits_the_header_most(header: str, expected: str) -> None:
    assert detect_delimiter(header) == expected


def test_describe_reports_bom_encoding_and_line_endings() -> None:
    crlf = describe(codecs.BOM_UTF8 + "a;b\r\nÄ;2\r\n".encode())
    assert (crlf.delimiter_name, crlf.encoding, crlf.bom, crlf.line_endings) == (
        "semicolon",
        "UTF-8",
        True,
        "CRLF",
    )
    latin = describe(b"a,b\nx,\xe9t\xe9\n")
    assert latin.encoding.startswith("not UTF-8 (byte 0xe9 on line 2")
    assert describe(b"a\tb\n1\t2\n").encoding == "ASCII"
    utf16 = describe(codecs.BOM_UTF16_LE + "a,b\n".encode("utf-16-le"))
    assert (utf16.encoding, utf16.bom) == ("UTF-16 LE", True)
    assert describe("a,b\n€".encode()[:-1]).encoding == "UTF-8"  # cut inside a character
    assert line_endings(b"a\rb\rc") == "CR"
    assert line_endings(b"a\nb\r\nc\n") == "mixed (2 LF, 1 CRLF)"


TAB = (
    "transaction_id\tevent_name\tevent_time\tslot_id\ttime_position_class\tsite_id\tnote\n"
    "t1\tslotImpression\t20240601120000\ts1\tpreroll\t7\tgenre=drama, comedy\n"
    't2\tdefaultImpression\t2024-06-01 12:00:01\ts1\tpreroll\t-1\t"quoted\ttab"\n'
)
SEMICOLON = (
    "transaction_id;event_name;event_time;slot_id;time_position_class;site_id;note\r\n"
    "t1;slotImpression;20240601120000;s1;preroll;7;a=1&b=2\r\n"
    't2;defaultImpression;2024-06-01 12:00:01;s1;preroll;;"x; y, ""z"""\r\n'
)


@pytest.mark.parametrize("text", [TAB, SEMICOLON], ids=["tab", "semicolon"])
def test_tab_and_semicolon_separated_files_are_ingested(tmp_path: Path, text: str) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    path = write_log(source / "x.csv.gz", text)

    assert main(["ingest", "--source", str(source), "--lake", str(lake)]) == 0

    [key] = event_files(lake)
    assert key.endswith(f"event_date=2024-06-01/event_hour=12/{source_id_for(str(path))}.parquet")
    rows = read_rows(lake, key)
    assert [(r["transaction_id"], r["site_id"], r["source_line"]) for r in rows] == [
        ("t1", 7, 2),
        ("t2", None, 3),  # -1: no site
    ]
    assert rejects(lake) == []
    notes = [r["extra_columns"] for r in rows]
    if text is TAB:
        assert notes == ['{"note":"genre=drama, comedy"}', '{"note":"quoted\\ttab"}']
    else:
        assert notes == ['{"note":"a=1&b=2"}', '{"note":"x; y, \\"z\\""}']
