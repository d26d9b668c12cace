"""`b2p inspect` on deliveries nobody has seen: what it maps by itself, the candidates it ranks,
what it detects, the mapping it writes, and its exit status."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from ingest.cli import main as b2p
from ingest.inspect.candidates import name_score
from ingest.inspect.sampling import read_sample
from ingest.logs.contract import load_aliases
from ingest.storage import LocalStorage
from tests.support import samples
from tests.support.v4files import write_log


@pytest.fixture(scope="module")
def field_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.field_sample(tmp_path_factory.mktemp("field"))


def inspect(source: Path, *extra: str) -> int:
    return b2p(["inspect", "--source", str(source), *extra])


def column_rows(report: str) -> dict[str, tuple[str, str]]:
    """header spellings -> (contract column, how), from the report's Columns table."""
    block = report.split("Columns (", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    rows = {}
    for line in block:
        header, target, how = re.split(r"\s{2,}", line.strip(), maxsplit=2)
        rows[header] = (target, how.lstrip("* "))
    return rows


def test_on_a_field_delivery_it_maps_what_it_can_and_proposes_the_slot_key(
    field_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "feed.json"

    assert inspect(field_sample / "logs", "--write-aliases", str(mapping)) == 2  # not as is

    report = capsys.readouterr().out
    columns = column_rows(report)
    # snake_case and PascalCase files: one row per column, both spellings
    assert columns["transaction_id / TransactionId"] == ("transaction_id", "same name")
    for name in ("event_type", "site_id", "ad_unit_id", "placement_id", "ad_duration"):
        assert columns[f"{name} / {''.join(p.title() for p in name.split('_'))}"][0] == name
    assert columns["max_duration / MaxDuration"] == (
        "max_slot_duration",
        "known FreeWheel field name",
    )
    assert columns["sales_channel_type / SalesChannelType"][0] == "sales_type"
    assert columns["global_slot_index / GlobalSlotIndex"] == (
        "slot_id",
        "best candidate for slot_id",
    )
    assert columns["all_request_kv / AllRequestKv"] == ("-", "kept in extra_columns")
    # the one required column it cannot map: the right candidate first
    slot_candidates = report.split("  slot_id:\n", 1)[1].splitlines()
    assert slot_candidates[0].split()[:2] == ["1.", "global_slot_index"]
    assert "time_position_class + slot_index" in slot_candidates[1]
    assert re.search(r"Time format of event_time: compact YYYYMMDDHHMMSS \(UTC\) on 100%", report)
    assert "Direct Sold" in report and "Reseller Sold" in report and "Unknown" in report
    assert "tab, " in report and "semicolon, " in report and "with BOM, CRLF" in report
    assert "as they are (no mapping): NO: every file would be quarantined" in report
    assert "with the proposed mapping: yes: 0 of" in report

    written = load_aliases(mapping)
    assert written.aliases == {
        "max_duration": "max_slot_duration",
        "sales_channel_type": "sales_type",
        "global_slot_index": "slot_id",
    }
    assert written.built == {} and written.null_id_values == ("-1",)
    assert json.loads(mapping.read_text())["#"].startswith("written by b2p inspect")

    # the mapping it wrote makes the files ingest as they are
    assert inspect(field_sample / "logs", "--column-aliases", str(mapping)) == 0


def test_without_a_global_index_the_key_is_the_class_plus_the_slot_index(tmp_path: Path) -> None:
    header = "txn,EventName,EventTime,TimePositionClass,SlotIndex,AdDuration\n"
    rows = "".join(
        f"r{r},slotImpression,2021021814{m:02d}00,{tpc},{i},\n"
        f"r{r},defaultImpression,2021021814{m:02d}01,{tpc},{i},15\n"
        for r in range(6)
        for m, (tpc, i) in enumerate((("preroll", 0), ("midroll", 0), ("midroll", 1)))
    )
    write_log(tmp_path / "logs" / "a.csv.gz", header + rows)
    mapping = tmp_path / "feed.json"

    assert inspect(tmp_path / "logs", "--write-aliases", str(mapping)) == 2

    written = load_aliases(mapping)
    assert written.built == {"slot_id": ("time_position_class", "slot_index")}
    assert written.aliases == {"txn": "transaction_id"}  # by the shape of its values
    assert inspect(tmp_path / "logs", "--column-aliases", str(mapping)) == 0


def test_a_time_column_is_found_by_its_values_not_only_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "transaction_id,event_name,slot_id,time_position_class,time_zone,ts\n"
    rows = "".join(
        f"t{n},slotImpression,s1,PREROLL,Europe/Paris,{1613658600 + n}\n" for n in range(9)
    )
    write_log(tmp_path / "logs" / "a.csv.gz", header + rows)

    assert inspect(tmp_path / "logs") == 2

    report = capsys.readouterr().out
    event_time = report.split("  event_time:\n", 1)[1].splitlines()
    assert event_time[0].split()[:2] == ["1.", "ts"]  # though time_zone's name is closer
    assert "time_zone" in event_time[1]
    assert name_score("time_zone", "event_time") > name_score("ts", "event_time")


def test_all_bad_rows_are_reported_with_the_first_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "transaction_id,event_name,event_time,slot_id,time_position_class\n"
    write_log(tmp_path / "logs" / "a.csv.gz", header + "t1,slotImpression,18/02/2021,s1,PREROLL\n")

    assert inspect(tmp_path / "logs") == 2

    report = capsys.readouterr().out
    assert "as they are (no mapping): NO: 1 of 1 sampled rows rejected (100.0%)" in report
    assert "column event_time ('event_time'): value '18/02/2021' is not a timestamp" in report
    assert "not a time ingest reads on 100%" in report


def test_an_unreadable_file_is_reported_and_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.csv.gz").write_bytes(b"transaction_id,event_name\n")  # not gzip

    assert inspect(tmp_path / "logs") == 2

    assert "unreadable: not a readable gzip file" in capsys.readouterr().out


def test_it_reads_a_bounded_amount_of_each_file(tmp_path: Path) -> None:
    header = "transaction_id,event_name,event_time,slot_id,time_position_class,note\n"
    row = 't{n},slotImpression,20210218143005,s1,PREROLL,"a ""quoted""\nvalue"\n'
    text = header + "".join(row.format(n=n) for n in range(40_000))  # ~2.4 MB
    write_log(tmp_path / "a.csv.gz", text)

    sample = read_sample(LocalStorage(tmp_path), "a.csv.gz", max_bytes=256 * 1024)

    assert not sample.complete and sample.error is None
    assert sample.sampled_bytes <= 256 * 1024
    assert 0 < len(sample.lines) < 40_000 and not sample.malformed  # cut between two records
    assert sample.lines[:3] == [2, 4, 6]  # physical lines, as ingest counts them
    assert len(gzip.decompress((tmp_path / "a.csv.gz").read_bytes())) > 2_000_000


def test_no_log_files_is_a_user_error(tmp_path: Path, capsys) -> None:
    assert inspect(tmp_path) == 1
    assert "no log files" in capsys.readouterr().err


def test_an_s3_delivery_is_inspected_in_place(
    field_sample: Path, aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="freewheel-delivery")
    for path in sorted((field_sample / "logs").rglob("*.csv.gz"))[:3]:
        key = f"v4/{path.relative_to(field_sample / 'logs').as_posix()}"
        s3.put_object(Bucket="freewheel-delivery", Key=key, Body=path.read_bytes())

    assert inspect("s3://freewheel-delivery/v4", "--files", "2") == 2

    report = capsys.readouterr().out
    assert "2 of 3 log file(s) sampled" in report
    assert "with the proposed mapping: yes: 0 of" in report
