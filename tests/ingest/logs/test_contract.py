from __future__ import annotations

import json

import pyarrow as pa
import pytest

from ingest.errors import UserError
from ingest.logs.contract import (
    CONTRACT,
    LAKE_SCHEMA,
    HeaderError,
    load_aliases,
    map_header,
    normalise_header,
)

REQUIRED = ["transaction_id", "event_name", "event_time", "slot_id", "time_position_class"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("transactionId", "transaction_id"),
        ("Transaction ID", "transaction_id"),
        ("TRANSACTION-ID", "transaction_id"),
        ("  transaction_id  ", "transaction_id"),
        ("siteSectionID", "site_section_id"),
        ("maxSlotDuration", "max_slot_duration"),
        ("Time Position Class", "time_position_class"),
        ("HTTPReferrer", "http_referrer"),
        ("sales-type", "sales_type"),
    ],
)
def test_header_names_are_normalised(raw: str, expected: str) -> None:
    assert normalise_header(raw) == expected


def test_the_lake_schema_types_each_kind_of_column() -> None:
    assert LAKE_SCHEMA.field("event_time").type == pa.timestamp("ms")
    assert LAKE_SCHEMA.field("ad_id").type == pa.int64()
    assert LAKE_SCHEMA.field("ad_duration").type == pa.float64()
    assert [c.name for c in CONTRACT if c.required] == REQUIRED


def test_header_maps_any_order_and_keeps_unknown_columns() -> None:
    mapping = map_header(
        ["Slot ID", "eventTime", "EVENT-NAME", "transactionId", "timePositionClass", "Foo Bar"]
    )
    assert mapping.contract_positions == {
        "slot_id": 0, "event_time": 1, "event_name": 2, "transaction_id": 3,
        "time_position_class": 4,
    }  # fmt: skip
    assert mapping.extra_positions == {"foo_bar": 5}


def test_missing_required_column_names_it_and_the_fix() -> None:
    with pytest.raises(HeaderError, match=r"slot_id.*--column-aliases"):
        map_header(["transaction_id", "event_name", "event_time", "time_position_class"])


def test_duplicate_columns_after_normalisation_are_refused() -> None:
    with pytest.raises(HeaderError, match="both map to 'slot_id'"):
        map_header([*REQUIRED, "slotId"])


def test_blank_header_names_get_their_position_as_name() -> None:
    # trailing ",," and a blank in the middle: kept as extra columns, not a duplicate ""
    mapping = map_header([*REQUIRED[:2], " ", *REQUIRED[2:], "", ""])
    assert mapping.contract_positions == {name: i for i, name in enumerate(REQUIRED[:2])} | {
        name: i + 3 for i, name in enumerate(REQUIRED[2:])
    }
    assert mapping.extra_positions == {"column_3": 2, "column_7": 6, "column_8": 7}


def test_a_blank_header_name_can_be_aliased_by_its_position() -> None:
    mapping = map_header(["", *REQUIRED[1:]], {"column_1": "transaction_id"})
    assert mapping.contract_positions["transaction_id"] == 0
    assert mapping.extra_positions == {}


def test_aliases_from_json_and_csv(tmp_path) -> None:
    json_file = tmp_path / "aliases.json"
    json_file.write_text(json.dumps({"Txn Id": "transaction_id", "ts": "event_time"}))
    csv_file = tmp_path / "aliases.csv"
    csv_file.write_text("from,to\nTxn Id,transaction_id\nts,eventTime\n")
    expected = {"txn_id": "transaction_id", "ts": "event_time"}
    assert load_aliases(json_file).aliases == expected
    assert load_aliases(csv_file).aliases == expected
    mapping = map_header(["txnId", "event_name", "TS", "slot_id", "time_position_class"], expected)
    assert mapping.contract_positions["transaction_id"] == 0
    assert mapping.contract_positions["event_time"] == 2


def test_alias_to_an_unknown_column_is_a_user_error(tmp_path) -> None:
    bad = tmp_path / "aliases.json"
    bad.write_text(json.dumps({"x": "not_a_column"}))
    with pytest.raises(UserError, match="not_a_column"):
        load_aliases(bad)
