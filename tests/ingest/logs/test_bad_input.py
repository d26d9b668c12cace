"""Bad input never disappears silently: quarantined files, rejected rows, and the counts."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from ingest.cli import main
from ingest.logs.lake import source_id_for
from ingest.storage import LocalStorage
from ingest.storage.s3 import S3ReadError
from tests.support.v4files import event_files, log_records, read_rows, rejects, write_log

HEADER = "transaction_id,event_name,event_time,slot_id,time_position_class,site_id,ad_duration\n"
GOOD_ROW = "t1,slotImpression,2024-06-01 12:00:00,s1,PREROLL,7,\n"


def run_ingest(source: Path, lake: Path, *extra: str) -> int:
    return main(["ingest", "--source", str(source), "--lake", str(lake), *extra])


def error_lines(stderr: str) -> list[dict]:
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry["level"] == "error"]


def _truncated_gzip() -> bytes:
    whole = gzip.compress((HEADER + GOOD_ROW * 2000).encode(), mtime=0)
    return whole[: len(whole) // 2]


# name, file name, raw bytes on disk, what the reason must say
UNREADABLE = [
    ("truncated gzip", "bad.csv.gz", _truncated_gzip(), "truncated"),
    ("not gzip", "bad.csv.gz", (HEADER + GOOD_ROW).encode(), "not a valid gzip file"),
    ("empty file", "bad.csv", b"", "empty"),
    ("gzip named .csv", "bad.csv", gzip.compress(b"a,b\n", mtime=0), "rename it"),
    ("empty gzip", "bad.gz", gzip.compress(b"", mtime=0), "empty"),
    (
        "missing required column",
        "bad.csv",
        b"transaction_id,event_name,event_time,time_position_class\nt,e,1717243200,P\n",
        "required column(s) slot_id missing",
    ),
    (
        "not UTF-8",
        "bad.csv",
        (HEADER + GOOD_ROW).encode() + b"t2,slotImpression,1717243200,s\xe9,PREROLL,,\n",
        "line 3 is not valid UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("file_name", "content", "reason"),
    [case[1:] for case in UNREADABLE],
    ids=[case[0] for case in UNREADABLE],
)
def test_unreadable_files_are_quarantined_and_the_rest_goes_on(
    tmp_path: Path, capsys, file_name: str, content: bytes, reason: str
) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    good = write_log(source / "good.csv.gz", HEADER + GOOD_ROW)
    bad = source / "sub" / file_name
    bad.parent.mkdir(parents=True)
    bad.write_bytes(content)

    assert run_ingest(source, lake) == 2

    bad_uri = str(bad.resolve())
    bad_sid = source_id_for(bad_uri)
    [error] = error_lines(capsys.readouterr().err)
    assert bad_uri in error["message"] and reason in error["message"]
    assert error["record"].endswith(f"_ingest/quarantine/{bad_sid}.json")
    quarantine = json.loads((lake / "_ingest" / "quarantine" / f"{bad_sid}.json").read_text())
    assert quarantine["uri"] == bad_uri
    assert reason in quarantine["reason"]
    # nothing of the bad file in the lake, no temp files left behind
    assert not [p for p in lake.rglob("*") if bad_sid in p.name and "_ingest" not in p.parts]
    assert not [p for p in lake.rglob(".tmp-*")]
    good_sid = source_id_for(str(good.resolve()))
    assert event_files(lake) == [
        f"v4_events/event_date=2024-06-01/event_hour=12/{good_sid}.parquet"
    ]
    statuses = {
        r["source_id"]: (r["status"], r["rows_read"], r["rows_written"]) for r in log_records(lake)
    }
    assert statuses == {good_sid: ("ok", 1, 1), bad_sid: ("quarantined", 0, 0)}

    # logged, so the next run skips it and succeeds (a re-delivery gets a new ETag)
    assert run_ingest(source, lake) == 0


def test_rejected_rows_name_file_line_and_column(tmp_path: Path, capsys) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    text = (
        HEADER.rstrip("\n")
        + ",note\n"
        + 't1,slotImpression,2024-06-01 12:00:00,s1,PREROLL,7,,"note\nwith\nnewlines"\n'  # 2-4 ok
        + "t2,slotImpression,2024-06-01 12:00:01,s2,PREROLL\n"  # 5 ragged
        + "t3,defaultImpression,2024-06-01 12:00:02,s2,PREROLL,seven,15,\n"  # 6 bad bigint
        + 't4,defaultImpression,not-a-time,s2,PREROLL,7,15,"two\nlines"\n'  # 7-8 bad time
        + "t5,slotImpression,2024-06-01 12:00:03,,PREROLL,7,,\n"  # 9 empty required
        + "t6,defaultImpression,2024-06-01 12:00:04,s2,PREROLL,7,abc,\n"  # 10 bad double
        + "t7,defaultImpression,2024-06-01 12:00:05,s2,PREROLL,7,12.5,\n"  # 11 ok
    )
    path = write_log(source / "rows.csv.gz", text)

    # 5 of 7 rejected would quarantine the file (test_not_understood.py): allow them all here
    assert run_ingest(source, lake, "--max-rejected-share", "1") == 0

    uri = str(path.resolve())
    got = [(r["line"], r["lines"], r["column"]) for r in rejects(lake)]
    assert got == [
        (5, 1, None),
        (6, 1, "site_id"),
        (7, 2, "event_time"),
        (9, 1, "slot_id"),
        (10, 1, "ad_duration"),
    ]
    by_line = {r["line"]: r for r in rejects(lake)}
    assert all(
        r["source_file"] == uri and r["message"].startswith(f"{uri} line ")
        for r in by_line.values()
    )
    assert "has 5 fields but the header has 8" in by_line[5]["reason"]
    assert "'seven' is not a whole number" in by_line[6]["message"]
    assert "'not-a-time' is not a timestamp" in by_line[7]["message"]
    assert "slot_id: value '' is empty but required" in by_line[9]["message"]
    assert by_line[7]["values"] == [
        "t4",
        "defaultImpression",
        "not-a-time",
        "s2",
        "PREROLL",
        "7",
        "15",
        "two\nlines",
    ]

    [record] = log_records(lake)
    assert (record["rows_read"], record["rows_written"], record["rows_rejected"]) == (7, 2, 5)
    assert record["rows_read"] == record["rows_written"] + record["rows_rejected"]
    # 11 lines: the header, 4 of written records (2-4, 11), 6 of rejected ones (5-10)
    assert (record["lines_read"], record["header_lines"]) == (11, 1)
    assert (record["lines_written"], record["lines_rejected"], record["lines_skipped"]) == (4, 6, 0)
    [key] = event_files(lake)
    assert [(r["transaction_id"], r["source_line"]) for r in read_rows(lake, key)] == [
        ("t1", 2),
        ("t7", 11),
    ]
    [warning] = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if '"warning"' in line
    ]
    assert warning["rejected"] == 5 and warning["rejects"].endswith(".jsonl")


def test_a_quarantined_new_version_keeps_the_earlier_good_outputs(tmp_path: Path) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    path = write_log(source / "a.csv.gz", HEADER + GOOD_ROW, mtime_ns=1_000_000_000)
    assert run_ingest(source, lake) == 0
    [good_key] = event_files(lake)
    good_bytes = (lake / good_key).read_bytes()

    whole = gzip.compress((HEADER + GOOD_ROW.replace("12:00", "13:00") * 5000).encode())
    path.write_bytes(whole[:-40])  # the re-delivery is truncated
    assert run_ingest(source, lake) == 2

    assert event_files(lake) == [good_key]
    assert (lake / good_key).read_bytes() == good_bytes
    assert sorted(r["status"] for r in log_records(lake)) == ["ok", "quarantined"]


def test_retry_quarantined_after_fixing_the_aliases(tmp_path: Path) -> None:
    source, lake = tmp_path / "source", tmp_path / "lake"
    header = "transaction_id,event_name,ts,slot_id,time_position_class\n"
    write_log(source / "a.csv", header + "t,e,1717243200,s,P\n", compress=False)
    assert run_ingest(source, lake) == 2
    assert event_files(lake) == []

    aliases = tmp_path / "aliases.csv"
    aliases.write_text("ts,event_time\n")
    assert run_ingest(source, lake, "--column-aliases", str(aliases)) == 0  # skipped: logged
    assert event_files(lake) == []
    assert run_ingest(source, lake, "--column-aliases", str(aliases), "--retry-quarantined") == 0
    assert len(event_files(lake)) == 1
    assert not list((lake / "_ingest" / "quarantine").glob("*.json"))
    assert [r["status"] for r in log_records(lake)] == ["ok"]


def test_a_file_failing_after_blocks_were_written_leaves_nothing(tmp_path: Path) -> None:
    """Small blocks: partitions of several hours are open when the truncation is found."""
    from ingest.logs.attempt import ingest_object
    from ingest.storage import LocalStorage

    rows = "".join(
        f"t{i},slotImpression,{1717243200 + i * 10},s,PREROLL,,\n" for i in range(3000)
    )  # 3000 rows, 10 s apart: hours 12 to 20
    whole = gzip.compress((HEADER + rows).encode(), mtime=0)
    write_log(tmp_path / "src" / "a.csv.gz", whole[:-100], compress=False)
    source, lake = LocalStorage(tmp_path / "src"), LocalStorage(tmp_path / "lake")
    [info] = list(source.list())

    result = ingest_object(source, info.key, info.etag, lake, block_bytes=4096)

    assert result.status == "quarantined"
    assert "truncated" in (result.error or "")
    visible = sorted(
        p.relative_to(tmp_path / "lake").as_posix()
        for p in (tmp_path / "lake").rglob("*")
        if p.is_file()
    )
    assert visible == [
        f"_ingest/log/{result.source_id}/{info.etag}.json",
        f"_ingest/quarantine/{result.source_id}.json",
    ]


class _BreaksAfter(io.RawIOBase):
    """A source stream that serves `limit` bytes, then fails like an exhausted S3 read."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        super().__init__()
        self._raw, self._left = raw, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            raise S3ReadError("the read of the object kept breaking; gave up after 5 resumes")
        data = self._raw.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def test_a_broken_source_read_fails_the_file_and_the_next_run_ingests_it(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error while reading a good gzip is not bad input: `failed`, nothing logged."""
    source, lake = tmp_path / "source", tmp_path / "lake"
    rows = "".join(f"t{i},slotImpression,{1717243200 + i},s,PREROLL,7,\n" for i in range(5000))
    path = write_log(source / "a.csv.gz", HEADER + rows)
    assert path.stat().st_size > 2000
    healthy_open_read = LocalStorage.open_read

    @contextlib.contextmanager
    def breaking_open_read(self: LocalStorage, key: str, etag: str | None = None):
        with healthy_open_read(self, key, etag) as handle:
            yield io.BufferedReader(_BreaksAfter(handle, 2000))

    monkeypatch.setattr(LocalStorage, "open_read", breaking_open_read)
    assert run_ingest(source, lake) == 1  # failed, not quarantined (2)

    [error] = [e for e in error_lines(capsys.readouterr().err) if "status" in e]
    assert error["status"] == "failed"
    assert "S3ReadError" in error["message"] and "retries it" in error["message"]
    assert log_records(lake) == []
    assert not (lake / "_ingest" / "quarantine").exists() or not list(
        (lake / "_ingest" / "quarantine").iterdir()
    )
    assert event_files(lake) == []

    monkeypatch.setattr(LocalStorage, "open_read", healthy_open_read)
    assert run_ingest(source, lake) == 0
    [record] = log_records(lake)
    assert (record["status"], record["rows_written"]) == ("ok", 5000)
