"""What the user sees when the source, the lake or a file cannot be used: the checks before any
work (one message, exit 1, nothing touched), an unreadable file that is retried once and then
quarantined, and — for every such error — no Python traceback on stderr at the default log
level. These run `b2p ingest` as its own process, as a scheduler would, and where file modes
matter without root's permission override (`tests.support.permissions`)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.dbt import REPO
from tests.support.permissions import run_as_ordinary_user
from tests.support.v4files import event_files, log_records, write_log

HEADER = "transaction_id,event_name,event_time,slot_id,time_position_class\n"
ROW = "t1,slotImpression,1717243200,s1,PREROLL\n"


def b2p_ingest(source: Path | str, lake: Path | str, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ingest.cli", "ingest", "--source", str(source)]
    command += ["--lake", str(lake), *extra]
    return run_as_ordinary_user(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def messages(stderr: str, level: str = "error") -> list[str]:
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [entry["message"] for entry in entries if entry["level"] == level]


def only_error(run: subprocess.CompletedProcess) -> str:
    """The run's one error line; stderr holds nothing else that is not a JSON log line."""
    assert "Traceback" not in run.stderr
    assert all(line.startswith("{") for line in run.stderr.splitlines()), run.stderr
    [message] = messages(run.stderr)
    return message


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "source"
    write_log(folder / "a.csv.gz", HEADER + ROW)
    return folder


def test_a_lake_that_is_a_file_stops_the_run_before_anything(source: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.write_text("not a folder")

    run = b2p_ingest(source, lake)

    assert run.returncode == 1
    assert only_error(run) == f"--lake {lake} is a file, not a folder; pass a folder"
    assert lake.read_text() == "not a folder"


def test_a_lake_below_a_file_stops_the_run_before_anything(source: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    lake = tmp_path / "file" / "lake"

    run = b2p_ingest(source, lake)

    assert run.returncode == 1
    assert only_error(run).startswith(f"--lake {lake} cannot be written (Not a directory)")


def test_a_read_only_lake_stops_the_run_before_any_file_is_read(
    source: Path, tmp_path: Path
) -> None:
    for n in range(50):  # many files, one message (not one traceback per file)
        write_log(source / f"f{n}.csv.gz", HEADER + ROW)
    lake = tmp_path / "lake"
    lake.mkdir(mode=0o555)

    run = b2p_ingest(source, lake)

    assert run.returncode == 1
    assert only_error(run).startswith(f"--lake {lake} cannot be written (Permission denied)")
    assert not messages(run.stderr, "info")  # no file was started, no summary of a run
    assert list(lake.iterdir()) == []


@pytest.mark.parametrize("what", ["missing", "file"])
def test_a_source_that_is_not_a_folder_is_named_as_such(tmp_path: Path, what: str) -> None:
    source = tmp_path / "delivery.csv.gz"
    if what == "file":
        write_log(source, HEADER + ROW)

    run = b2p_ingest(source, tmp_path / "lake")

    assert run.returncode == 1
    if what == "file":
        expected = "is a file, not a folder; pass the folder that holds it"
    else:
        expected = "does not exist; pass the folder holding the log files"
    assert only_error(run).startswith(f"--source {source} {expected}")
    assert not (tmp_path / "lake").exists()


def test_a_folder_in_the_source_that_cannot_be_listed_stops_the_run(
    source: Path, tmp_path: Path
) -> None:
    hidden = source / "2024" / "06"
    write_log(hidden / "b.csv.gz", HEADER + ROW)
    hidden.chmod(0o000)
    try:
        run = b2p_ingest(source, tmp_path / "lake")
    finally:
        hidden.chmod(0o755)

    assert run.returncode == 1
    message = only_error(run)
    assert f"cannot list the folder {hidden.resolve()} (Permission denied)" in message
    assert "the files in it would be missed" in message


def test_an_unreadable_file_is_retried_once_then_quarantined_until_retried(
    source: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    secret = write_log(source / "secret.csv.gz", HEADER + ROW.replace("t1", "t2"))
    secret.chmod(0o000)
    uri = str(secret.resolve())

    first = b2p_ingest(source, lake)
    assert first.returncode == 1  # failed: perhaps someone is fixing the permissions
    message = only_error(first)
    assert message.startswith(f"{uri} cannot be read: permission denied")
    assert "the next run retries it, and quarantines it if it fails so again" in message
    assert [r["status"] for r in log_records(lake)] == ["ok"]  # a.csv.gz went on

    second = b2p_ingest(source, lake)
    assert second.returncode == 2
    assert "on 2 attempts in a row" in only_error(second)
    assert "--retry-quarantined" in only_error(second)

    third = b2p_ingest(source, lake)
    assert third.returncode == 0  # not tried again: no file is retried forever

    secret.chmod(0o644)
    assert b2p_ingest(source, lake, "--retry-quarantined").returncode == 0
    assert sorted(r["status"] for r in log_records(lake)) == ["ok", "ok"]
    assert len(event_files(lake)) == 2
    assert not list((lake / "_ingest" / "failures").glob("*.json"))


def bad_source(folder: Path) -> Path:
    """One of each bad file the CLI must survive without a traceback."""
    write_log(folder / "good.csv.gz", HEADER + ROW)
    write_log(folder / "nul.csv.gz", bytes(1 << 20))
    write_log(folder / "cr.csv", (HEADER + ROW).replace("\n", "\r"), compress=False)
    write_log(folder / "quote.csv", HEADER + 't2,"open,1717243200,s,P\n' + ROW, compress=False)
    write_log(folder / "long.csv", HEADER + "x" * 5000 + "\n" + ROW, compress=False)
    write_log(folder / "empty.csv", b"", compress=False)
    write_log(folder / "latin1.csv", HEADER.encode() + b"t\xe9,e,1,s,P\n", compress=False)
    write_log(folder / "columns.csv", "a,b\n1,2\n", compress=False)
    write_log(folder / "notgzip.csv.gz", HEADER + ROW, compress=False)
    garbage = gzip.compress((HEADER + ROW).encode()) + b"trailing garbage bytes"
    write_log(folder / "garbage.csv.gz", garbage, compress=False)
    (folder / "dangling.csv.gz").symlink_to(folder / "gone.csv.gz")
    unreadable = write_log(folder / "unreadable.csv.gz", HEADER + ROW)
    unreadable.chmod(0o000)
    return folder


USER_ERRORS: list[tuple[str, list[str], int]] = [
    ("source missing", ["--source", "{tmp}/nowhere", "--lake", "{tmp}/lake"], 1),
    ("source is a file", ["--source", "{tmp}/file.csv", "--lake", "{tmp}/lake"], 1),
    ("lake is a file", ["--source", "{tmp}/bad", "--lake", "{tmp}/file.csv"], 1),
    ("lake read-only", ["--source", "{tmp}/bad", "--lake", "{tmp}/read-only"], 1),
    ("bad workers", ["--source", "{tmp}/bad", "--lake", "{tmp}/lake", "--workers", "0"], 1),
    (
        "missing alias file",
        ["--source", "{tmp}/bad", "--lake", "{tmp}/lake", "--column-aliases", "{tmp}/none.json"],
        1,
    ),
    (
        "limits",
        [
            *("--source", "{tmp}/bad", "--lake", "{tmp}/lake"),
            *("--max-field-bytes", "9", "--max-record-bytes", "8"),
        ],
        1,
    ),
    (
        "source role for a folder",
        ["--source", "{tmp}/bad", "--lake", "{tmp}/lake", "--source-role-arn", "arn:x"],
        1,
    ),
    ("every bad file at once", ["--source", "{tmp}/bad", "--lake", "{tmp}/lake"], 1),
    (
        "every bad file, 2 workers",
        ["--source", "{tmp}/bad", "--lake", "{tmp}/lake", "--workers", "2"],
        1,
    ),
]


@pytest.mark.parametrize(
    ("arguments", "status"),
    [case[1:] for case in USER_ERRORS],
    ids=[case[0] for case in USER_ERRORS],
)
def test_no_user_caused_error_prints_a_traceback(
    tmp_path: Path, arguments: list[str], status: int
) -> None:
    bad_source(tmp_path / "bad")
    write_log(tmp_path / "file.csv", HEADER + ROW, compress=False)
    (tmp_path / "read-only").mkdir(mode=0o555)
    command = [sys.executable, "-m", "ingest.cli", "ingest"]
    command += [argument.format(tmp=tmp_path) for argument in arguments]

    run = run_as_ordinary_user(command, cwd=REPO, capture_output=True, text=True, timeout=120)

    assert run.returncode == status, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert all(line.startswith("{") for line in run.stderr.splitlines()), run.stderr
    assert messages(run.stderr)  # and the user was told why


def test_every_bad_file_is_one_line_naming_it(tmp_path: Path) -> None:
    folder = bad_source(tmp_path / "bad")

    run = b2p_ingest(folder, tmp_path / "lake")

    assert run.returncode == 1  # the unreadable file failed (once); the rest are quarantined
    errors = messages(run.stderr)
    named: dict[str, Any] = {
        name: [m for m in errors if f"/{name}" in m]
        for name in (
            "nul.csv.gz",
            "empty.csv",
            "latin1.csv",
            "columns.csv",
            "notgzip.csv.gz",
            "garbage.csv.gz",
            "dangling.csv.gz",
            "unreadable.csv.gz",
        )
    }
    assert {name: len(found) for name, found in named.items()} == dict.fromkeys(named, 1)
    assert len(errors) == len(named)
    warned = messages(run.stderr, "warning")
    assert any("/quote.csv line 2" in m for m in warned)
    assert any("/long.csv line 2" in m for m in warned)
    statuses = {Path(r["uri"]).name: r["status"] for r in log_records(tmp_path / "lake")}
    assert statuses["good.csv.gz"] == statuses["cr.csv"] == "ok"
