"""The mapping file of a feed (`--column-aliases FILE`): aliases as always, a column built from
several (a composite slot key), the "no id" values and the rejected-share threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.cli import main
from ingest.errors import UserError
from ingest.logs.contract import (
    CONTRACT,
    DEFAULT_MAX_REJECTED_SHARE,
    FeedMapping,
    HeaderError,
    load_aliases,
    map_header,
    mapping_document,
    parse_aliases,
)
from ingest.logs.values import parse_column, validate_block
from tests.support.v4files import event_files, read_rows, write_log

REQUIRED = ["transaction_id", "event_name", "event_time", "time_position_class"]
SITE_ID = next(column for column in CONTRACT if column.name == "site_id")
EVENT_TIME = next(column for column in CONTRACT if column.name == "event_time")


def _block(header: list[str], rows: list[list[str]], mapping: FeedMapping | None = None):
    header_mapping = map_header(header, mapping)
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(header))]
    return header_mapping, validate_block(columns, header_mapping)


# ---- the file


def test_a_json_mapping_file_holds_aliases_keys_settings_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_text(
        json.dumps(
            {
                "#": "written by b2p inspect; review it",
                "MaxDuration": "max_slot_duration",
                "sales_channel_type": "sales_type",
                "slot_id": ["TimePositionClass", "slot_index"],
                "null_id_values": ["-1", "NULL"],
                "max_rejected_share": 0.05,
            }
        )
    )
    mapping = load_aliases(path)
    assert mapping.aliases == {
        "max_duration": "max_slot_duration",
        "sales_channel_type": "sales_type",
    }
    assert mapping.built == {"slot_id": ("time_position_class", "slot_index")}
    assert mapping.null_id_values == ("-1", "NULL")
    assert mapping.max_rejected_share == 0.05


def test_an_old_alias_file_means_what_it_meant(tmp_path: Path) -> None:
    path = tmp_path / "aliases.json"
    path.write_text(json.dumps({"txnId": "transaction_id", "customId": "slot_id"}))
    mapping = load_aliases(path)
    assert mapping == FeedMapping(aliases={"txn_id": "transaction_id", "custom_id": "slot_id"})
    assert mapping.null_id_values == ("-1",)
    assert mapping.max_rejected_share == DEFAULT_MAX_REJECTED_SHARE


def test_a_csv_mapping_builds_a_key_from_columns_joined_by_plus() -> None:
    mapping = parse_aliases(
        "from,to\nMaxDuration,max_slot_duration\ntime_position_class+SlotIndex,slot_id\n",
        "feed.csv",
    )
    assert mapping.aliases == {"max_duration": "max_slot_duration"}
    assert mapping.built == {"slot_id": ("time_position_class", "slot_index")}


def test_the_written_document_reads_back_as_the_same_mapping() -> None:
    mapping = FeedMapping(
        aliases={"max_duration": "max_slot_duration"},
        built={"slot_id": ("time_position_class", "slot_index")},
        null_id_values=("-1", ""),
        max_rejected_share=0.5,
    )
    again = parse_aliases(mapping_document(mapping, comment="hello"), "again.json")
    assert again == FeedMapping(mapping.aliases, mapping.built, ("-1",), 0.5)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"slot_id": ["slot_index", "slot_id"]}, "distinct, named columns other than itself"),
        ({"site_id": ["a", "b"]}, "'site_id' cannot be built from several columns"),
        ({"slot_id": ["a", "a"]}, "distinct"),
        ({"x": "slot_id", "slot_id": ["a", "b"]}, "both an alias target and built"),
        ({"x": 5}, "must map to a contract column name"),
        ({"null_id_values": "-1"}, "must be a list of strings"),
        ({"max_rejected_share": 1.5}, "from 0 to 1"),
        ({"max_rejected_share": True}, "from 0 to 1"),
    ],
)
def test_a_bad_mapping_file_is_a_user_error_naming_the_key(document: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_aliases(json.dumps(document), "feed.json")


# ---- a composite key


def test_a_key_built_from_two_columns_is_their_escaped_values_joined() -> None:
    mapping = FeedMapping(built={"slot_id": ("time_position_class", "slot_index")})
    header = ["transaction_id", "event_name", "event_time", "TimePositionClass", "SlotIndex"]
    rows = [
        ["t", "slotImpression", "20210218143005", "preroll", "1"],
        ["t", "defaultImpression", "20210218143006", " preroll ", " 1 "],  # the slot's ad
        ["t", "slotImpression", "20210218143005", "midroll", "1"],
        ["t", "slotImpression", "20210218143005", "a:b", "c"],  # escaped: never "a" + "b:c"
        ["t", "slotImpression", "20210218143005", "a", "b:c"],
        ["t", "slotImpression", "20210218143005", "back\\", "slash"],
    ]
    header_mapping, block = _block(header, rows, mapping)
    assert header_mapping.built_positions == {"slot_id": (3, 4)}
    assert header_mapping.header_name("slot_id") == "TimePositionClass + SlotIndex"
    assert block.problems == []
    keys = block.columns["slot_id"].to_pylist()
    assert keys == ["preroll:1", "preroll:1", "midroll:1", "a\\:b:c", "a:b\\:c", "back\\\\:slash"]
    assert len(set(keys)) == 5  # the ad shares its slot's key, nothing else collides
    # the parts are still columns of their own: the class in its column, the index in extras
    assert block.columns["time_position_class"].to_pylist()[0] == "preroll"
    assert json.loads(block.columns["extra_columns"].to_pylist()[0]) == {"slot_index": "1"}


def test_a_key_with_an_empty_part_is_empty_and_rejects_its_row() -> None:
    mapping = FeedMapping(built={"slot_id": ("time_position_class", "slot_index")})
    header = [*REQUIRED, "slot_index"]
    _, block = _block(
        header,
        [["t", "slotImpression", "1717243200", "preroll", ""], ["t", "s", "1717243200", "p", "2"]],
        mapping,
    )
    assert [(p.column, p.mask.to_pylist(), p.reason) for p in block.problems] == [
        ("slot_id", [True, False], "is empty but required")
    ]


def test_a_built_key_satisfies_the_required_column_and_its_parts_must_exist() -> None:
    mapping = FeedMapping(built={"slot_id": ("time_position_class", "slot_index")})
    with pytest.raises(HeaderError, match=r"slot_id is built from .*no 'slot_index'"):
        map_header(REQUIRED, mapping)
    with pytest.raises(HeaderError, match="required column"):
        map_header(REQUIRED)  # no slot_id and nothing to build it from


def test_a_part_can_be_named_by_the_contract_column_it_is_aliased_to() -> None:
    mapping = FeedMapping(
        aliases={"tpc": "time_position_class"},
        built={"slot_id": ("time_position_class", "slot_index")},
    )
    header_mapping = map_header(
        ["transaction_id", "event_name", "event_time", "TPC", "slot_index"], mapping
    )
    assert header_mapping.built_positions == {"slot_id": (3, 4)}


def test_a_file_s_own_column_of_a_built_name_is_kept_as_an_extra() -> None:
    mapping = FeedMapping(built={"slot_id": ("global_slot_index",)})
    header_mapping = map_header([*REQUIRED, "slot_id", "global_slot_index"], mapping)
    assert header_mapping.built_positions == {"slot_id": (5,)}
    assert header_mapping.extra_positions == {"slot_id": 4, "global_slot_index": 5}


# ---- "no id" values


def test_minus_one_is_no_id_by_default_in_id_columns_only() -> None:
    header = [*REQUIRED, "slot_id", "site_id", "ad_id", "max_slot_duration", "sales_type"]
    good = ["t", "slotImpression", "1717243200", "preroll", "s"]
    _, block = _block(
        header,
        [
            [*good, "-1", " -1 ", "-1", "-1"],
            [*good, "7", "", "30", "x"],
            [*good, "-2", "-10", "", ""],
        ],
    )
    assert block.problems == []
    assert block.columns["site_id"].to_pylist() == [None, 7, -2]
    assert block.columns["ad_id"].to_pylist() == [None, None, -10]
    assert block.columns["max_slot_duration"].to_pylist() == [-1.0, 30.0, None]  # not an id
    assert block.columns["sales_type"].to_pylist() == ["-1", "x", None]


@pytest.mark.parametrize(
    ("null_values", "expected"),
    [
        ((), [-1, 0, None, None]),
        (("-1", "0", "NULL"), [None, None, None, None]),
    ],
)
def test_the_no_id_values_are_a_setting(null_values: tuple[str, ...], expected: list) -> None:
    raw = pa.array(["-1", "0", "NULL", ""])
    if "NULL" not in null_values:
        values, problems = parse_column(SITE_ID, pa.array(["-1", "0", "", ""]), null_values)
        assert (values.to_pylist(), problems) == (expected, [])
        values, problems = parse_column(SITE_ID, raw, null_values)
        assert [p.mask.to_pylist() for p in problems] == [[False, False, True, False]]
        return
    values, problems = parse_column(SITE_ID, raw, null_values)
    assert (values.to_pylist(), problems) == (expected, [])


def test_compact_times_fail_their_row_only_on_either_path() -> None:
    values, problems = parse_column(EVENT_TIME, pa.array(["20210218143005", "20210230120000"]))
    assert values.to_pylist()[1] is None
    assert [p.mask.to_pylist() for p in problems] == [[False, True]]
    assert "YYYYMMDDHHMMSS" in problems[0].reason


def test_ingest_builds_the_key_so_a_slot_and_its_ads_share_it(tmp_path: Path) -> None:
    text = (
        "TransactionId,EventName,EventTime,TimePositionClass,SlotIndex,SiteId,AdDuration\n"
        "r1,slotImpression,20210218143005,preroll,0,-1,\n"
        "r1,defaultImpression,20210218143006,preroll,0,-1,15\n"
        "r1,slotImpression,20210218143105,midroll,0,-1,\n"
        "r1,defaultImpression,20210218143106,midroll,0,-1,30\n"
    )
    write_log(tmp_path / "source" / "a.csv.gz", text)
    mapping = tmp_path / "feed.json"
    mapping.write_text(json.dumps({"slot_id": ["time_position_class", "slot_index"]}))
    lake = tmp_path / "lake"

    argv = ["ingest", "--source", str(tmp_path / "source"), "--lake", str(lake)]
    assert main([*argv, "--column-aliases", str(mapping)]) == 0

    [key] = event_files(lake)
    rows = read_rows(lake, key)
    assert [(r["event_name"], r["slot_id"], r["site_id"]) for r in rows] == [
        ("slotImpression", "preroll:0", None),
        ("defaultImpression", "preroll:0", None),
        ("slotImpression", "midroll:0", None),
        ("defaultImpression", "midroll:0", None),
    ]
    assert json.loads(rows[0]["extra_columns"]) == {"slot_index": "0"}
