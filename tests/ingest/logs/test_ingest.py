from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow.parquet as pq
import pytest

from ingest.cli import main
from ingest.logs import command, runner
from ingest.logs.attempt import ingest_object
from ingest.logs.lake import source_id_for
from ingest.logs.progress import ProgressBar
from ingest.logs.runner import SourceAccess
from ingest.storage import LocalStorage, Storage
from tests.support.v4files import (
    event_files,
    lake_files,
    log_records,
    read_rows,
    write_log,
)

HEADER = "transactionId,eventName,eventTime,slotId,timePositionClass,siteId,adDuration,deviceType\n"
# Hours worked out by hand: 1717239600 = 2024-06-01T11:00:00Z; +02:00 and Z converted to UTC.
MULTI_HOUR = (
    HEADER
    + "t1,slotImpression,2024-06-01 10:59:59.999,s1,PREROLL,1,,ctv\n"  # line 2 -> 06-01 h10
    + "t1,defaultImpression,1717239600,s1,PREROLL,1,15,ctv\n"  # line 3 -> 06-01 h11
    + 't2,slotImpression,2024-06-01T13:30:00+02:00,s1,MIDROLL,2,,"web, mobile"\n'  # 4 -> h11
    + 't3,slotImpression,2024-06-02T00:10:00Z,s9,POSTROLL,3,,"multi\nline"\n'  # 5-6 -> 06-02 h0
    + "t3,defaultImpression,2024-06-01 23:59:59,s9,POSTROLL,3,30,\n"  # line 7 -> 06-01 h23
)


def run_ingest(source: Path, lake: Path, *extra: str) -> int:
    return main(["ingest", "--source", str(source), "--lake", str(lake), *extra])


def json_logs(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "source", tmp_path / "lake"


def test_rows_land_in_their_utc_hour_partitions(dirs, capsys) -> None:
    source, lake = dirs
    log_file = write_log(source / "2024" / "06" / "01" / "net_a.csv.gz", MULTI_HOUR)
    (source / "README.txt").write_text("not a log")  # other files are skipped

    assert run_ingest(source, lake) == 0

    sid = source_id_for(str(log_file.resolve()))
    expected = {
        f"v4_events/event_date=2024-06-01/event_hour=10/{sid}.parquet": [("t1", 2)],
        f"v4_events/event_date=2024-06-01/event_hour=11/{sid}.parquet": [("t1", 3), ("t2", 4)],
        f"v4_events/event_date=2024-06-01/event_hour=23/{sid}.parquet": [("t3", 7)],
        f"v4_events/event_date=2024-06-02/event_hour=0/{sid}.parquet": [("t3", 5)],
    }
    assert event_files(lake) == sorted(expected)
    for key, rows in expected.items():
        assert [(r["transaction_id"], r["source_line"]) for r in read_rows(lake, key)] == rows

    hour_11 = read_rows(lake, f"v4_events/event_date=2024-06-01/event_hour=11/{sid}.parquet")
    assert hour_11[0]["event_time"] == dt.datetime(2024, 6, 1, 11, 0)
    assert hour_11[0]["ad_duration"] == 15.0
    assert hour_11[0]["site_id"] == 1
    assert hour_11[1]["event_time"] == dt.datetime(2024, 6, 1, 11, 30)
    assert json.loads(hour_11[1]["extra_columns"]) == {"device_type": "web, mobile"}
    assert hour_11[1]["source_file"] == str(log_file.resolve())

    [record] = log_records(lake)
    assert (record["status"], record["rows_read"], record["rows_written"]) == ("ok", 5, 5)
    assert record["rows_rejected"] == 0
    assert sorted(record["output_keys"]) == sorted(expected)

    summary = json_logs(capsys.readouterr().err)[-1]
    assert summary["files_ingested"] == 1
    assert summary["rows_written"] == 5
    assert summary["mb_per_second"] is not None


def test_second_run_leaves_the_lake_byte_identical(dirs, capsys) -> None:
    source, lake = dirs
    write_log(source / "a.csv.gz", MULTI_HOUR)
    write_log(
        source / "b.csv", HEADER + "t9,slotImpression,1717243200,s1,PREROLL,,,\n", compress=False
    )
    assert run_ingest(source, lake) == 0
    before = lake_files(lake)
    capsys.readouterr()

    assert run_ingest(source, lake) == 0

    assert lake_files(lake) == before
    summary = json_logs(capsys.readouterr().err)[-1]
    assert (summary["files_ingested"], summary["files_skipped"]) == (0, 2)
    rows = sum(len(read_rows(lake, key)) for key in event_files(lake))
    assert rows == 6


def test_a_new_file_is_the_only_one_ingested(dirs) -> None:
    source, lake = dirs
    write_log(source / "day1" / "a.csv.gz", MULTI_HOUR)
    assert run_ingest(source, lake) == 0
    before = lake_files(lake)

    new = write_log(
        source / "day2" / "b.csv.gz", HEADER + "t7,slotImpression,1717243200,s,PREROLL,,,\n"
    )
    assert run_ingest(source, lake) == 0

    after = lake_files(lake)
    assert {k: v for k, v in after.items() if k in before} == before  # untouched, byte for byte
    new_sid = source_id_for(str(new.resolve()))
    local_etag = f"{new.stat().st_size}-{new.stat().st_mtime_ns}"
    assert sorted(set(after) - set(before)) == [
        f"_ingest/log/{new_sid}/{local_etag}.json",
        f"v4_events/event_date=2024-06-01/event_hour=12/{new_sid}.parquet",
    ]


def test_a_changed_file_replaces_its_rows_and_drops_partitions_it_left(dirs) -> None:
    source, lake = dirs
    path = write_log(source / "a.csv.gz", MULTI_HOUR, mtime_ns=1_000_000_000)
    assert run_ingest(source, lake) == 0
    sid = source_id_for(str(path.resolve()))
    assert len(event_files(lake)) == 4

    corrected = HEADER + "t1,slotImpression,2024-06-01 10:15:00,s1,PREROLL,5,,\n"
    write_log(
        path,
        corrected + "t1,defaultImpression,2024-06-01 10:16:00,s1,PREROLL,5,20,\n",
        mtime_ns=2_000_000_000,
    )
    assert run_ingest(source, lake) == 0

    only = f"v4_events/event_date=2024-06-01/event_hour=10/{sid}.parquet"
    assert event_files(lake) == [only]
    assert [
        (r["transaction_id"], r["site_id"], r["source_line"]) for r in read_rows(lake, only)
    ] == [
        ("t1", 5, 2),
        ("t1", 5, 3),
    ]
    [record] = log_records(lake)  # the earlier version's record is gone
    assert record["etag"].startswith(f"{path.stat().st_size}-2000000000")
    assert record["output_keys"] == [only]


def test_parallel_workers_ingest_every_file(dirs, capsys) -> None:
    source, lake = dirs
    for index in range(3):
        write_log(
            source / f"f{index}.csv.gz",
            HEADER + f"t{index},slotImpression,{1717243200 + index * 3600},s,PREROLL,,,\n",
        )
    assert run_ingest(source, lake, "--workers", "2") == 0
    assert event_files(lake) == sorted(
        f"v4_events/event_date=2024-06-01/event_hour={12 + index}/"
        f"{source_id_for(str((source / f'f{index}.csv.gz').resolve()))}.parquet"
        for index in range(3)
    )
    per_file = [entry for entry in json_logs(capsys.readouterr().err) if entry.get("file")]
    assert sorted(entry["rows"] for entry in per_file) == [1, 1, 1]
    assert all({"seconds", "bytes", "rejected"} <= set(entry) for entry in per_file)


class _KillsItsReader(LocalStorage):
    """A source whose files named `poison*` kill the process reading them, like an OOM kill."""

    def open_read(self, key: str, etag: str | None = None) -> Iterator[BinaryIO]:  # type: ignore[override]
        if os.path.basename(key).startswith("poison"):
            os._exit(137)
        return super().open_read(key, etag=etag)


@dataclass(frozen=True)
class _PoisonedSourceAccess(SourceAccess):
    # a module-level class: the pool's workers unpickle it and open their source through it
    def open(self) -> Storage:
        return _KillsItsReader(self.uri)


def test_a_worker_that_dies_fails_only_its_file(dirs, capsys, monkeypatch) -> None:
    source, lake = dirs
    names = ["a", "b", "poison", "c", "d", "e"]
    for index, name in enumerate(names):
        write_log(
            source / f"{name}.csv.gz",
            HEADER + f"t{index},slotImpression,{1717243200 + index * 3600},s,PREROLL,,,\n",
        )
    monkeypatch.setattr(command, "SourceAccess", _PoisonedSourceAccess)

    assert run_ingest(source, lake, "--workers", "2") == 1

    logs = json_logs(capsys.readouterr().err)
    statuses = {Path(e["file"]).name: e["status"] for e in logs if e.get("status")}
    assert statuses == {f"{name}.csv.gz": "ok" for name in names} | {"poison.csv.gz": "failed"}
    assert "worker process reading it died" in next(
        e["message"] for e in logs if e.get("status") == "failed"
    )
    summary = logs[-1]
    assert (summary["files_ingested"], summary["files_failed"]) == (5, 1)
    assert len(log_records(lake)) == 5  # the dead one is not logged: the next run retries it


def test_ingest_object_is_callable_on_its_own(tmp_path) -> None:
    source = LocalStorage(tmp_path / "src")
    lake = LocalStorage(tmp_path / "lake")
    write_log(tmp_path / "src" / "x.csv.gz", MULTI_HOUR)
    [info] = list(source.list())
    result = ingest_object(source, info.key, info.etag, lake, size=info.size)
    assert (result.status, result.rows_read, result.rows_written, result.rows_rejected) == (
        "ok",
        5,
        5,
        0,
    )
    assert result.uncompressed_bytes == len(MULTI_HOUR.encode())
    assert (
        tmp_path / "lake" / "_ingest" / "log" / result.source_id / f"{info.etag}.json"
    ).is_file()


def test_column_aliases_map_other_header_names(dirs, tmp_path) -> None:
    source, lake = dirs
    write_log(
        source / "a.csv.gz", "txn,event_name,ts,slot_id,time_position_class\nt,e,1717243200,s,P\n"
    )
    aliases = tmp_path / "aliases.json"
    aliases.write_text(json.dumps({"txn": "transaction_id", "ts": "event_time"}))
    assert run_ingest(source, lake, "--column-aliases", str(aliases)) == 0
    [key] = event_files(lake)
    assert read_rows(lake, key)[0]["transaction_id"] == "t"


def test_a_missing_source_folder_is_a_user_error(tmp_path, capsys) -> None:
    assert run_ingest(tmp_path / "nope", tmp_path / "lake") == 1
    assert "does not exist" in capsys.readouterr().err


def test_s3_source_and_lake_through_the_same_interface(aws: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=aws)
    client.create_bucket(Bucket="fw-logs")
    client.create_bucket(Bucket="lake")
    client.put_object(
        Bucket="fw-logs", Key="in/2024/06/01/a.csv.gz", Body=gzip.compress(MULTI_HOUR.encode())
    )
    client.put_object(Bucket="fw-logs", Key="in/bad.gz", Body=b"not gzip")

    args = ["ingest", "--source", "s3://fw-logs/in", "--lake", "s3://lake/data"]
    assert main(args) == 2
    assert main(args) == 0  # everything logged: nothing to do

    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"])
    sid = source_id_for("s3://fw-logs/in/2024/06/01/a.csv.gz")
    assert [k for k in keys if k.startswith("data/v4_events/")] == sorted(
        f"data/v4_events/event_date={day}/event_hour={hour}/{sid}.parquet"
        for day, hour in [
            ("2024-06-01", 10),
            ("2024-06-01", 11),
            ("2024-06-01", 23),
            ("2024-06-02", 0),
        ]
    )
    assert f"data/_ingest/quarantine/{source_id_for('s3://fw-logs/in/bad.gz')}.json" in keys
    body = client.get_object(
        Bucket="lake", Key=f"data/v4_events/event_date=2024-06-01/event_hour=11/{sid}.parquet"
    )
    rows = pq.read_table(io.BytesIO(body["Body"].read())).to_pylist()
    assert [(r["transaction_id"], r["source_line"]) for r in rows] == [("t1", 3), ("t2", 4)]


def test_progress_bar_draws_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = ProgressBar(total_bytes=200, total_files=2, stream=stream)
        bar.advance(100)
        bar.file_done()
        bar.close()
    assert "50%" in terminal.getvalue() and "1/2 files" in terminal.getvalue()
    assert pipe.getvalue() == ""


def terminal_screen(output: str) -> list[str]:
    """The lines a terminal shows for `output`: CR returns to column 0 and what follows
    overwrites, LF starts a new line. (A bar at position 0 uses nothing else.)"""
    lines: list[list[str]] = [[]]
    column = 0
    for char in output:
        assert char != "\x1b", "escape sequences are not emulated"
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append([])
            column = 0
        else:
            line = lines[-1]
            line[column : column + 1] = [char]
            column += 1
    return ["".join(line).rstrip() for line in lines]


def test_on_a_terminal_log_lines_are_printed_above_the_bar_not_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    source = tmp_path / "source"
    write_log(source / "a.csv.gz", MULTI_HOUR)
    write_log(source / "b.csv.gz", MULTI_HOUR)

    assert main(["ingest", "--source", str(source), "--lake", str(tmp_path / "lake")]) == 0

    output = terminal.getvalue()
    assert "1/2 files" in output  # the bar was drawn between the two files
    shown = [line for line in terminal_screen(output) if line]
    # each log line on its own line, nothing of the bar left on the screen
    assert [line.split()[:2] for line in shown] == [
        ["info", "ingested"],
        ["info", "ingested"],
        ["info", "done:"],
    ]
    assert all("a.csv.gz" in line or "b.csv.gz" in line for line in shown[:2])


def test_without_a_terminal_tqdm_is_not_even_imported() -> None:
    # its import costs RSS in the ingest process, which runs close to its memory budget
    code = (
        "import sys, io; from ingest.logs.progress import ProgressBar; "
        "bar = ProgressBar(100, 1, stream=io.StringIO()); bar.advance(100); bar.file_done(); "
        "bar.close(); print('tqdm' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_a_worker_process_opens_its_storages_once_for_all_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An S3 source costs clients and an AssumeRole: not once per file of a long backlog."""
    source, lake = tmp_path / "source", tmp_path / "lake"
    for n in range(3):
        write_log(source / f"f{n}.csv.gz", MULTI_HOUR)
    opened: list[str] = []
    real_open = SourceAccess.open

    def counting_open(self: SourceAccess) -> Storage:
        opened.append(self.uri)
        return real_open(self)

    monkeypatch.setattr(SourceAccess, "open", counting_open)
    runner.worker_storages.cache_clear()
    access = SourceAccess(str(source))
    infos = list(LocalStorage(source).list())
    settings = runner.ReadSettings({})
    results = [runner._ingest_in_worker(access, str(lake), info, settings) for info in infos]
    runner.worker_storages.cache_clear()

    assert [r.status for r in results] == ["ok"] * 3
    assert opened == [str(source)]
