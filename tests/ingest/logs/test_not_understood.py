"""A delivery that is not understood must not look like a success: a file whose rows are all
rejected, or more than the feed's share, is quarantined (exit 2) with a message that says what
to do; a file with a few bad rows is still ingested, with its rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.cli import main
from tests.support.v4files import event_files, log_records, read_rows, rejects, write_log

HEADER = "transaction_id,event_name,EventTime,slot_id,time_position_class,site_id\n"


def rows(count: int, time: str = "20240601120000", start: int = 0) -> str:
    return "".join(
        f"t{n},slotImpression,{time},s1,preroll,7\n" for n in range(start, start + count)
    )


def run_ingest(source: Path, lake: Path, *extra: str) -> int:
    return main(["ingest", "--source", str(source), "--lake", str(lake), *extra])


def quarantine_reasons(lake: Path) -> list[str]:
    return [json.loads(p.read_text())["reason"] for p in lake.glob("_ingest/quarantine/*.json")]


def test_a_file_of_unparseable_times_is_quarantined_naming_column_value_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    write_log(source / "feed.csv.gz", HEADER + rows(40, time="18/02/2021 14:30:05"))

    assert run_ingest(source, lake) == 2

    assert event_files(lake) == [] and rejects(lake) == []  # nothing of it in the lake
    [reason] = quarantine_reasons(lake)
    assert "every row (40) was rejected" in reason
    assert "column event_time ('EventTime')" in reason
    assert "value '18/02/2021 14:30:05' is not a timestamp" in reason
    assert f"b2p inspect --source {source}" in reason
    assert "--column-aliases" in reason and "--retry-quarantined" in reason
    [record] = log_records(lake)
    assert record["status"] == "quarantined"
    err = capsys.readouterr().err
    assert "Traceback" not in err and "every row (40) was rejected" in err


def test_a_few_bad_rows_are_rejected_and_the_file_is_ingested(tmp_path: Path) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    text = HEADER + rows(19) + rows(1, time="never", start=19)  # 5 % rejected
    write_log(source / "feed.csv.gz", text)

    assert run_ingest(source, lake) == 0

    assert [r["line"] for r in rejects(lake)] == [21]
    [key] = event_files(lake)
    assert len(read_rows(lake, key)) == 19
    assert quarantine_reasons(lake) == []


def test_more_than_the_threshold_rejected_is_quarantined_and_the_share_is_configurable(
    tmp_path: Path,
) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    text = HEADER + rows(15) + rows(5, time="never", start=15)  # 25 % rejected
    write_log(source / "feed.csv.gz", text)

    assert run_ingest(source, lake) == 2
    [reason] = quarantine_reasons(lake)
    assert "5 of 20 rows (25%) were rejected for a value, more than the 10%" in reason
    assert "line 17, value 'never'" in reason

    # a feed known to be this dirty: its mapping file allows more, and the version is retried
    mapping = tmp_path / "feed.json"
    mapping.write_text(json.dumps({"max_rejected_share": 0.3}))
    assert run_ingest(source, lake, "--column-aliases", str(mapping), "--retry-quarantined") == 0
    assert len(rejects(lake)) == 5 and quarantine_reasons(lake) == []
    [key] = event_files(lake)
    assert len(read_rows(lake, key)) == 15


def test_every_row_rejected_quarantines_whatever_the_threshold(tmp_path: Path) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    write_log(source / "feed.csv.gz", HEADER + "t1,slotImpression,x,s1,preroll,7\n" + "t2,s\n")

    assert run_ingest(source, lake, "--max-rejected-share", "1") == 2
    [reason] = quarantine_reasons(lake)
    assert "every row (2) was rejected" in reason


def test_records_broken_as_records_do_not_count_towards_the_share(tmp_path: Path) -> None:
    """Issue 11's rule turns one broken value into one reject per line it held: those are damage
    in the file, not a mapping nobody understood, so the good records are ingested."""
    source, lake = tmp_path / "source", tmp_path / "lake"
    broken = "".join(f"t9{n},x\n" for n in range(8))  # 8 records with 2 fields of the header's 6
    write_log(source / "feed.csv.gz", HEADER + rows(4) + broken)

    assert run_ingest(source, lake) == 0
    assert quarantine_reasons(lake) == []
    assert len(rejects(lake)) == 8  # 8 of 12 rows rejected, none for a value
    [key] = event_files(lake)
    assert len(read_rows(lake, key)) == 4


def test_every_row_broken_as_a_record_is_not_understood(tmp_path: Path) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    write_log(source / "feed.csv.gz", HEADER + "t1;slotImpression;x\n" * 3)

    assert run_ingest(source, lake) == 2
    [reason] = quarantine_reasons(lake)
    assert "every row (3) was rejected" in reason and "fields but the header has 6" in reason


def test_a_not_understood_correction_keeps_the_rows_of_the_good_version(tmp_path: Path) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    path = write_log(source / "feed.csv.gz", HEADER + rows(3), mtime_ns=1_000_000_000)
    assert run_ingest(source, lake) == 0
    [key] = event_files(lake)

    write_log(path, HEADER + rows(3, time="tomorrow"), mtime_ns=2_000_000_000)
    assert run_ingest(source, lake) == 2

    assert event_files(lake) == [key] and len(read_rows(lake, key)) == 3


def test_the_threshold_must_be_a_share() -> None:
    assert main(["ingest", "--source", ".", "--max-rejected-share", "5"]) == 1
