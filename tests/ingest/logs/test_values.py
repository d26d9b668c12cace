from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from ingest.logs.attempt import ingest_object
from ingest.logs.contract import CONTRACT, FeedMapping, map_header
from ingest.logs.values import (
    extra_columns_json,
    parse_column,
    parse_event_time,
    validate_block,
)
from ingest.storage import LocalStorage
from tests.support.v4files import read_rows, rejects, write_log

REQUIRED = ["transaction_id", "event_name", "event_time", "slot_id", "time_position_class"]

UTC = dt.UTC
EVENT_TIME = next(column for column in CONTRACT if column.name == "event_time")


def _naive_utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 1717243200 = 2024-06-01T12:00:00Z
        ("1717243200", _naive_utc(2024, 6, 1, 12, 0, 0)),
        ("1717243200.25", _naive_utc(2024, 6, 1, 12, 0, 0, 250000)),
        ("1717243200.123999", _naive_utc(2024, 6, 1, 12, 0, 0, 123000)),  # truncated to ms
        ("2024-06-01 12:34:56", _naive_utc(2024, 6, 1, 12, 34, 56)),
        ("2024-06-01 12:34:56.7", _naive_utc(2024, 6, 1, 12, 34, 56, 700000)),
        ("2024-06-01 12:34:56.789", _naive_utc(2024, 6, 1, 12, 34, 56, 789000)),
        ("2024-06-01T12:34:56", _naive_utc(2024, 6, 1, 12, 34, 56)),
        ("2024-06-01T12:34:56Z", _naive_utc(2024, 6, 1, 12, 34, 56)),
        ("2024-06-01T12:34:56.5Z", _naive_utc(2024, 6, 1, 12, 34, 56, 500000)),
        ("2024-06-01T14:34:56+02:00", _naive_utc(2024, 6, 1, 12, 34, 56)),
        ("2024-06-01T00:04:56-05:30", _naive_utc(2024, 6, 1, 5, 34, 56)),
        ("2024-06-01T23:30:00-0100", _naive_utc(2024, 6, 2, 0, 30, 0)),  # crosses midnight
        (" 2024-06-01 12:34:56 ", _naive_utc(2024, 6, 1, 12, 34, 56)),
        # compact UTC, as publishers' stored v4 tables have it
        ("20210218143005", _naive_utc(2021, 2, 18, 14, 30, 5)),
        ("20240229235959", _naive_utc(2024, 2, 29, 23, 59, 59)),
        ("20210218143005.25", _naive_utc(2021, 2, 18, 14, 30, 5, 250000)),
    ],
)
def test_event_time_formats(text: str, expected: dt.datetime) -> None:
    parsed = parse_event_time(pa.array([text.strip()]))
    assert parsed.type == pa.timestamp("ms")
    assert parsed.to_pylist() == [expected]
    # a column holding only this value may take the fast path; a bad neighbour forces the
    # careful one: the value's result must not depend on its neighbours
    alone, _ = parse_column(EVENT_TIME, pa.array([text]))
    beside_bad, problems = parse_column(EVENT_TIME, pa.array([text, "garbage"]))
    assert alone.to_pylist() == [expected]
    assert beside_bad.to_pylist() == [expected, None]
    assert [p.mask.to_pylist() for p in problems] == [[False, True]]


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2024-02-30 00:00:00", "2024-13-01 00:00:00", "2024-06-01", "12:00:00",
     "1717243200,5", "-5", "2024-06-01 25:00:00", "20230229120000", "20210218246000",
     "2021021814300", "202102181430055", "20210218 143005"],
)  # fmt: skip
def test_unparseable_event_times_are_null(text: str) -> None:
    assert parse_event_time(pa.array([text])).to_pylist() == [None]


def _block(rows: list[list[str]], header: list[str]):
    mapping = map_header(header)
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(header))]
    return validate_block(columns, mapping)


HEADER = [*REQUIRED, "site_id", "max_slot_duration", "sales_type"]
GOOD = ["t", "slotImpression", "1717243200", "s", "PREROLL"]


def test_typed_values_and_empty_means_null() -> None:
    block = _block(
        [
            [*GOOD, "42", "30", "HOUSE"],
            [*GOOD, " -7 ", "1.5e1", ""],
            [*GOOD, "", "", "Direct Sold"],
            [*GOOD, "123456789012345678", ".25", "x"],
        ],
        HEADER,
    )
    assert block.problems == []
    assert block.failed_mask() is None
    assert block.columns["site_id"].to_pylist() == [42, -7, None, 123456789012345678]
    assert block.columns["max_slot_duration"].to_pylist() == [30.0, 15.0, None, 0.25]
    assert block.columns["sales_type"].to_pylist() == ["HOUSE", None, "Direct Sold", "x"]
    assert block.columns["series_id"].to_pylist() == [None] * 4  # column absent from the file
    assert block.columns["extra_columns"].to_pylist() == [None] * 4


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("site_id", "12a", "not a whole number"),
        ("site_id", "1.0", "not a whole number"),
        ("site_id", "12345678901234567890", "not a whole number"),  # would overflow int64
        ("max_slot_duration", "thirty", "not a number"),
        ("max_slot_duration", "nan", "not a number"),
        ("event_time", "soon", "not a timestamp"),
        ("event_time", "", "empty but required"),
        ("transaction_id", "", "empty but required"),
        ("time_position_class", "", "empty but required"),
    ],
)
def test_bad_values_fail_their_row_only(column: str, value: str, reason: str) -> None:
    bad = [*GOOD, "1", "2", "x"]
    bad[HEADER.index(column)] = value
    block = _block([[*GOOD, "1", "2", "x"], bad, [*GOOD, "3", "4", "y"]], HEADER)
    failed = block.failed_mask()
    assert failed is not None and failed.to_pylist() == [False, True, False]
    assert [(p.column, p.mask.to_pylist()) for p in block.problems] == [
        (column, [False, True, False])
    ]
    assert reason in block.problems[0].reason


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("site_id", "9223372036854775807", 9223372036854775807),
        ("site_id", "-9223372036854775808", -9223372036854775808),
        ("site_id", "9223372036854775808", None),
        ("site_id", "+5", 5),
        ("site_id", "007", 7),
        ("ad_duration", "1e3", 1000.0),
        ("ad_duration", "+.5", 0.5),
        ("ad_duration", "inf", None),
        ("ad_duration", "NaN", None),
    ],
)
def test_numbers_parse_the_same_alone_and_beside_bad_values(
    name: str, text: str, expected: object
) -> None:
    column = next(c for c in CONTRACT if c.name == name)
    alone, problems_alone = parse_column(column, pa.array([text]))
    beside_bad, problems = parse_column(column, pa.array([text, "x"]))
    assert alone.to_pylist() == [expected]
    assert beside_bad.to_pylist() == [expected, None]
    assert bool(problems_alone) is (expected is None)
    failed = [any(p.mask[row].as_py() for p in problems) for row in range(2)]
    assert failed == [expected is None, True]


# 2100-01-01T00:00:00Z = 4102444800: the first instant out of range
IN_RANGE_EVENT_TIMES = [
    ("0", _naive_utc(1970, 1, 1)),
    ("1970-01-01 00:00:00", _naive_utc(1970, 1, 1)),
    ("1970-01-01T01:00:00+01:00", _naive_utc(1970, 1, 1)),
    ("4102444799.999", _naive_utc(2099, 12, 31, 23, 59, 59, 999000)),
    ("2099-12-31 23:59:59.999", _naive_utc(2099, 12, 31, 23, 59, 59, 999000)),
    ("2099-12-31T23:59:59Z", _naive_utc(2099, 12, 31, 23, 59, 59)),
    ("19700101000000", _naive_utc(1970, 1, 1)),
    ("20991231235959", _naive_utc(2099, 12, 31, 23, 59, 59)),
]
OUT_OF_RANGE_EVENT_TIMES = [
    "300000000000",  # epoch seconds of the year ~11,476
    "999999999999.999",
    "4102444800",
    "2100-01-01 00:00:00",
    "2100-01-01T01:00:00+01:00",  # 2100-01-01T00:00Z
    "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:30:00+01:00",  # 1969-12-31T23:30Z
    "0001-01-01T00:30:00+01:00",  # year 0 in UTC
    "0000-01-01 00:00:00",
    "9999-12-31T23:30:00-01:00",  # year 10000 in UTC
    "21000101000000",
    "19691231235959",
]


@pytest.mark.parametrize(("text", "expected"), IN_RANGE_EVENT_TIMES)
def test_event_times_at_the_edges_of_the_range_are_accepted(
    text: str, expected: dt.datetime
) -> None:
    alone, problems_alone = parse_column(EVENT_TIME, pa.array([text]))
    beside_bad, problems = parse_column(EVENT_TIME, pa.array([text, "garbage"]))
    assert (alone.to_pylist(), problems_alone) == ([expected], [])
    assert beside_bad.to_pylist() == [expected, None]
    assert [p.mask.to_pylist() for p in problems] == [[False, True]]


@pytest.mark.parametrize("text", OUT_OF_RANGE_EVENT_TIMES)
@pytest.mark.parametrize("neighbour", ["1717243200", "2024-06-01T12:00:00Z", " soon "])
def test_out_of_range_event_times_fail_their_row_only(text: str, neighbour: str) -> None:
    # alone (fast path candidates) and beside others (careful path): the same result
    for raw in ([text], [neighbour, text]):
        values, problems = parse_column(EVENT_TIME, pa.array(raw))
        assert values.to_pylist()[-1] is None
        range_problems = [p for p in problems if "out of range" in p.reason]
        assert len(range_problems) == 1
        assert range_problems[0].reason == "is out of range (1970-01-01 .. 2099-12-31)"
        assert range_problems[0].mask.to_pylist() == [False] * (len(raw) - 1) + [True]
        others = [p for p in problems if p is not range_problems[0]]
        assert all(not p.mask.to_pylist()[-1] for p in others)  # one reason per value


@pytest.mark.parametrize("text", ["1e400", "-1e309", " 1E+999 ", "123456789e400"])
def test_doubles_that_overflow_are_not_finite_numbers(text: str) -> None:
    for raw in ([text], ["1.5", text], ["x", text]):
        values, problems = parse_column(
            next(c for c in CONTRACT if c.name == "ad_duration"), pa.array(raw)
        )
        assert values.to_pylist()[-1] is None
        reasons = [p.reason for p in problems if p.mask.to_pylist()[-1]]
        assert reasons == ["is not a finite number"]


def test_bad_times_and_numbers_reject_their_rows_and_the_rest_of_the_file_lands(
    tmp_path,
) -> None:
    header = f"{','.join(REQUIRED)},ad_duration,,\n"  # two blank header names at the end
    lines = [
        "t1,e,2024-06-01T12:00:00Z,s,PREROLL,1.5,a,b",
        "t2,e,300000000000,s,PREROLL,,,",
        "t3,e,0001-01-01T00:30:00+01:00,s,PREROLL,,,",
        "t4,e,9999-12-31T23:30:00-01:00,s,PREROLL,,,",
        "t5,e,1969-12-31T23:59:59Z,s,PREROLL,,,",
        "t6,e,2100-01-01 00:00:00,s,PREROLL,,,",
        "t7,e,1970-01-01 00:00:00,s,PREROLL,,,",
        "t8,e,2099-12-31 23:59:59.999,s,PREROLL,,,",
        "t9,e,2024-06-01T12:00:00Z,s,PREROLL,1e400,,",
        "t10,e,2024-06-01T12:00:00Z,s,PREROLL,-1e309,,",
    ]
    write_log(tmp_path / "src" / "x.csv.gz", header + "\n".join(lines) + "\n")
    source, lake = LocalStorage(tmp_path / "src"), LocalStorage(tmp_path / "lake")
    [info] = list(source.list())

    # 7 of 10 rejected would quarantine the file as not understood: allow every share here
    allow_all = FeedMapping(max_rejected_share=1.0)
    result = ingest_object(source, info.key, info.etag, lake, size=info.size, aliases=allow_all)

    assert (result.status, result.rows_read, result.rows_written, result.rows_rejected) == (
        "ok", 10, 3, 7,
    )  # fmt: skip
    written = [
        row
        for key in sorted(result.output_keys)
        if "/v4_events/" in f"/{key}"
        for row in read_rows(tmp_path / "lake", key)
    ]
    assert sorted(row["transaction_id"] for row in written) == ["t1", "t7", "t8"]
    first = next(row for row in written if row["transaction_id"] == "t1")
    assert json.loads(first["extra_columns"]) == {"column_7": "a", "column_8": "b"}
    assert [(r["line"], r["column"], r["reason"]) for r in rejects(tmp_path / "lake")] == [
        (line, "event_time", "is out of range (1970-01-01 .. 2099-12-31)") for line in range(3, 8)
    ] + [
        (10, "ad_duration", "is not a finite number"),
        (11, "ad_duration", "is not a finite number"),
    ]


def test_unknown_columns_go_to_extra_columns_as_json() -> None:
    header = [*REQUIRED, "Device Type", "note"]
    block = _block(
        [
            [*GOOD, "CTV", 'say "hi", \\ ok\nbye\ttab'],
            [*GOOD, "", "ctrl\x01char"],
        ],
        header,
    )
    decoded = [json.loads(text) for text in block.columns["extra_columns"].to_pylist()]
    assert decoded == [
        {"device_type": "CTV", "note": 'say "hi", \\ ok\nbye\ttab'},
        {"device_type": None, "note": "ctrl\x01char"},
    ]


def test_extra_columns_json_is_compact_and_ordered() -> None:
    encoded = extra_columns_json([("b", pa.array(["1"])), ("a", pa.array(["é"]))], 1)
    assert encoded.to_pylist() == ['{"b":"1","a":"é"}']
