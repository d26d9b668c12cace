"""A hostile delivery, case by case (issue 11): each bad file sits beside a valid one, and each
test checks what the user sees — exit status, message, reject or quarantine record — that the
lake holds exactly the well-formed records, and that every physical line is accounted for:
`lines_read` (checked against a count made here, on the decompressed bytes) = header lines +
lines written + lines rejected + lines skipped."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ingest.cli import main
from ingest.logs.attempt import ingest_object
from ingest.logs.lake import source_id_for
from ingest.storage import LocalStorage
from tests.support.v4files import event_files, log_records, read_rows, rejects, write_log

HEADER = (
    "transaction_id,event_name,event_time,slot_id,time_position_class,site_id,ad_duration,"
    "sales_type,note\n"
)


def row(n: int) -> str:
    """A well-formed record; its transaction id says which one it is."""
    return f"t{n},slotImpression,{1717243200 + n % 3600},s{n},PREROLL,7,,DIRECT,fine\n"


def run_ingest(source: Path, lake: Path, *extra: str) -> int:
    return main(["ingest", "--source", str(source), "--lake", str(lake), *extra])


def json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def errors(stderr: str) -> list[str]:
    return [entry["message"] for entry in json_lines(stderr) if entry["level"] == "error"]


def physical_lines(text: bytes) -> int:
    """Counted here, not by the reader: LF-ended lines plus a last line without LF."""
    return text.count(b"\n") + (0 if text.endswith(b"\n") or not text else 1)


def uri_of(path: Path) -> str:
    """The source URI b2p gives a file (its folder resolved, a link itself not followed)."""
    return str(path.parent.resolve() / path.name)


def record_of(lake: Path, path: Path) -> dict[str, Any]:
    sid = source_id_for(uri_of(path))
    [record] = [r for r in log_records(lake) if r["source_id"] == sid]
    return record


def assert_accounted(lake: Path, path: Path, text: bytes) -> dict[str, Any]:
    """The file's log record accounts for every record and every physical line of `text`."""
    record = record_of(lake, path)
    assert record["lines_read"] == physical_lines(text)
    assert record["lines_read"] == (
        record["header_lines"]
        + record["lines_written"]
        + record["lines_rejected"]
        + record["lines_skipped"]
    )
    assert record["rows_read"] == record["rows_written"] + record["rows_rejected"]
    mine = [r for r in rejects(lake) if r["source_file"] == uri_of(path)]
    assert sum(r["lines"] for r in mine) == record["lines_rejected"]
    assert len(mine) == record["rows_rejected"]
    return record


def lake_transactions(lake: Path, path: Path) -> list[tuple[str, int]]:
    uri = uri_of(path)
    found = [
        (r["transaction_id"], r["source_line"])
        for key in event_files(lake)
        for r in read_rows(lake, key)
        if r["source_file"] == uri
    ]
    return sorted(found, key=lambda pair: pair[1])


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """source, lake, and the valid file that sits beside every bad one."""
    source, lake = tmp_path / "source", tmp_path / "lake"
    good = write_log(source / "good.csv.gz", HEADER + row(2) + row(3))
    return source, lake, good


def assert_good_file_ingested(lake: Path, good: Path) -> None:
    assert lake_transactions(lake, good) == [("t2", 2), ("t3", 3)]


def test_an_unclosed_quote_on_line_3_costs_line_3_and_nothing_after_it(dirs, capsys) -> None:
    source, lake, good = dirs
    text = HEADER + row(2) + row(3).replace(",DIRECT,", ',"HOUSE,', 1)
    text += "".join(row(n) for n in range(4, 12))
    bad = write_log(source / "quote.csv", text, compress=False)

    assert run_ingest(source, lake) == 0  # a rejected row is not a failure

    [reject] = rejects(lake)
    assert (reject["line"], reject["lines"]) == (3, 1)
    assert "quoted value in column sales_type" in reject["message"]
    assert "the next line is read as a new record" in reject["message"]
    assert reject["values"][:3] == ["t3", "slotImpression", str(1717243203)]
    expected = [("t2", 2)] + [(f"t{n}", n) for n in range(4, 12)]
    assert lake_transactions(lake, bad) == expected
    record = assert_accounted(lake, bad, text.encode())
    assert (record["rows_read"], record["rows_written"], record["rows_rejected"]) == (10, 9, 1)
    summary = json_lines(capsys.readouterr().err)[-1]["message"]
    assert "rows 12 read = 11 written + 1 rejected" in summary
    assert_good_file_ingested(lake, good)


def test_an_unclosed_quote_early_in_a_large_file_loses_no_record_after_it(tmp_path: Path) -> None:
    """The same fault across many blocks (the 256 MB case in benchmarks.adversarial)."""
    rows = 40_000
    text = HEADER + row(2) + row(3).replace(",DIRECT,", ',"HOUSE,', 1)
    text += "".join(row(n) for n in range(4, rows + 2))
    path = write_log(tmp_path / "src" / "big.csv.gz", text)
    source, lake = LocalStorage(tmp_path / "src"), LocalStorage(tmp_path / "lake")
    [info] = source.list()

    result = ingest_object(source, info.key, info.etag, lake, block_bytes=64 * 1024)

    assert (result.status, result.rows_written, result.rows_rejected) == ("ok", rows - 1, 1)
    [reject] = rejects(tmp_path / "lake")
    assert reject["line"] == 3 and "column sales_type" in reject["reason"]
    lines = [line for _, line in lake_transactions(tmp_path / "lake", path)]
    assert lines == [2, *range(4, rows + 2)]
    assert_accounted(tmp_path / "lake", path, text.encode())


def test_a_huge_quoted_value_with_line_breaks_keeps_the_record_after_it(dirs) -> None:
    """A quoted free-text value over ~1 MB and 12,000 lines (the 50 MB case in the benchmark):
    over the limits, so taken as an unclosed quote; the lines it held are read as records."""
    source, lake, good = dirs
    blob = "".join(f"lorem ipsum {n}, dolor sit amet, consectetur\n" for n in range(12_000))
    text = HEADER + row(2) + row(3).replace("fine\n", f'"{blob}"\n') + row(4)
    bad = write_log(source / "blob.csv.gz", text)

    assert run_ingest(source, lake) == 0

    mine = [r for r in rejects(lake) if r["source_file"] == uri_of(bad)]
    assert mine[0]["line"] == 3 and "is not closed within 100 lines" in mine[0]["reason"]
    # the opening line 3, the value's other 11,999 lines, its closing quote alone on a line
    assert [r["line"] for r in mine] == list(range(3, 12_004))
    assert all("has 3 fields but the header has 9" in r["reason"] for r in mine[1:-1])
    assert "column transaction_id that does not close on this line" in mine[-1]["reason"]
    assert lake_transactions(lake, bad) == [("t2", 2), ("t4", 12_004)]
    assert_accounted(lake, bad, text.encode())
    assert_good_file_ingested(lake, good)


def test_a_line_over_the_record_limit_is_rejected_by_streaming_past_it(dirs) -> None:
    source, lake, good = dirs
    huge = "t3,slotImpression," + "9" * (5 << 20) + ",s3,PREROLL,7,,DIRECT,fine\n"
    text = HEADER + row(2) + huge + row(4)
    bad = write_log(source / "long.csv.gz", text)

    assert run_ingest(source, lake) == 0

    [reject] = rejects(lake)
    assert (reject["line"], reject["lines"], reject["values"]) == (3, 1, [])
    assert f"is {len(huge):,} bytes long, over the record limit of 1,048,576" in reject["reason"]
    assert reject["excerpt"].startswith("t3,slotImpression,999")
    assert lake_transactions(lake, bad) == [("t2", 2), ("t4", 4)]
    assert_accounted(lake, bad, text.encode())
    assert_good_file_ingested(lake, good)


def test_a_file_of_nul_bytes_is_quarantined_at_once_and_not_retried(dirs, capsys) -> None:
    source, lake, good = dirs
    bad = source / "zeros.csv.gz"
    bad.write_bytes(gzip.compress(bytes(64 << 20), compresslevel=1))  # 64 MB of NUL

    assert run_ingest(source, lake) == 2

    [message] = errors(capsys.readouterr().err)
    assert uri_of(bad) in message and "NUL bytes" in message
    assert "Traceback" not in message
    sid = source_id_for(uri_of(bad))
    quarantine = json.loads((lake / "_ingest" / "quarantine" / f"{sid}.json").read_text())
    assert "not a text CSV file" in quarantine["reason"]
    assert record_of(lake, bad)["status"] == "quarantined"
    assert_good_file_ingested(lake, good)
    assert run_ingest(source, lake) == 0  # recorded: the next run does not try it again


def test_cr_only_line_ends_are_read_with_lines_counted_by_cr(dirs) -> None:
    source, lake, good = dirs
    text = (HEADER + row(2) + row(3).replace("fine", '"two\nlines"') + row(5)).replace("\n", "\r")
    bad = write_log(source / "mac.csv", text, compress=False)

    assert run_ingest(source, lake) == 0

    assert lake_transactions(lake, bad) == [("t2", 2), ("t3", 3), ("t5", 5)]
    record = record_of(lake, bad)
    assert record["lines_read"] == text.count("\r") == 5
    assert record["lines_read"] == 1 + record["lines_written"]
    notes = [
        json.loads(r["extra_columns"])["note"]
        for key in event_files(lake)
        for r in read_rows(lake, key)
        if r["source_file"] == uri_of(bad)
    ]
    assert sorted(notes) == ["fine", "fine", "two\nlines"]  # a CR in a quoted value: a break
    assert_good_file_ingested(lake, good)


def test_a_dangling_link_is_quarantined_and_the_files_beside_it_go_on(dirs, capsys) -> None:
    source, lake, good = dirs
    link = source / "later.csv.gz"
    target = source.parent / "elsewhere" / "later.csv.gz"
    link.symlink_to(target)

    assert run_ingest(source, lake) == 2

    [message] = errors(capsys.readouterr().err)
    assert f"{uri_of(link)} is a symbolic link to {target}, which does not exist" in message
    assert record_of(lake, link)["status"] == "quarantined"
    assert_good_file_ingested(lake, good)
    assert run_ingest(source, lake) == 0  # the same dangling link: not tried again

    write_log(target, HEADER + row(9))  # the target appears: a new version of the entry
    assert run_ingest(source, lake) == 0
    assert lake_transactions(lake, link) == [("t9", 2)]


def test_trailing_garbage_after_a_valid_gzip_member_is_named_as_such(dirs, capsys) -> None:
    source, lake, good = dirs
    bad = source / "tail.csv.gz"
    bad.write_bytes(gzip.compress((HEADER + row(2)).encode()) + b"<html>502 Bad Gateway</html>")

    assert run_ingest(source, lake) == 2

    [message] = errors(capsys.readouterr().err)
    assert "complete gzip data followed by bytes that are not gzip" in message
    assert "trailing garbage" in message
    assert "re-deliver it gzip-compressed" not in message
    assert_good_file_ingested(lake, good)


def test_concatenated_deliveries_skip_the_repeated_header(dirs, capsys) -> None:
    source, lake, good = dirs
    first, second = HEADER + row(2) + row(3), "\ufeff" + HEADER + row(4)
    bad = source / "both.csv.gz"
    bad.write_bytes(gzip.compress(first.encode()) + gzip.compress(second.encode()))

    assert run_ingest(source, lake) == 0

    assert lake_transactions(lake, bad) == [("t2", 2), ("t3", 3), ("t4", 5)]
    assert not [r for r in rejects(lake) if r["source_file"] == uri_of(bad)]
    record = assert_accounted(lake, bad, (first + second).encode())
    assert (record["repeated_headers"], record["lines_skipped"]) == (1, 1)
    summary = json_lines(capsys.readouterr().err)[-1]["message"]
    assert "1 line(s) skipped (blank, repeated headers)" in summary
    assert_good_file_ingested(lake, good)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--max-field-bytes", "10", "--max-record-bytes", "5"], "cannot be larger"),
        (["--max-record-lines", "0"], "must be 1 or more"),
    ],
)
def test_bad_limits_are_refused_before_any_work(
    dirs, capsys, arguments: list[str], message: str
) -> None:
    source, lake, _ = dirs
    try:
        status = run_ingest(source, lake, *arguments)
    except SystemExit as exit_info:  # argparse refuses the value itself
        status = int(exit_info.code or 0)
        assert status == 2
    else:
        assert status == 1
    assert message in capsys.readouterr().err
    assert not lake.exists()


def test_limits_given_on_the_command_line_apply(dirs) -> None:
    source, lake, good = dirs
    text = HEADER + row(2) + row(3).replace("fine", "x" * 300)
    bad = write_log(source / "wide.csv", text, compress=False)

    assert run_ingest(source, lake, "--max-field-bytes", "200", "--max-record-bytes", "400") == 0

    [reject] = rejects(lake)
    assert reject["line"] == 3 and "300 bytes in column note" in reject["reason"]
    assert_accounted(lake, bad, text.encode())
    assert os.path.exists(lake / "_ingest" / "rejects")
    assert_good_file_ingested(lake, good)


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_an_unexpected_error_is_one_line_naming_the_file(
    dirs, capsys, monkeypatch: pytest.MonkeyPatch, verbose: bool
) -> None:
    """A bug met on one file (stood in for by a validation that fails on its rows): that file
    fails and is retried by the next run, the others go on, and the traceback is there only
    for whoever asks (`b2p -v`)."""
    from ingest.logs import attempt

    source, lake, good = dirs
    bad = write_log(source / "bug.csv", HEADER + row(2).replace("t2,", "t-bug,"), compress=False)
    healthy = attempt.validate_block

    def failing(raw, mapping):
        if "t-bug" in raw[0].to_pylist():
            raise RuntimeError("a bug")
        return healthy(raw, mapping)

    monkeypatch.setattr(attempt, "validate_block", failing)
    flags = ["-v"] if verbose else []

    status = main([*flags, "ingest", "--source", str(source), "--lake", str(lake)])

    assert status == 1
    entries = json_lines(capsys.readouterr().err)
    [error] = [e for e in entries if e["level"] == "error"]
    assert error["message"].startswith(f"{uri_of(bad)}: unexpected RuntimeError: a bug")
    assert "the next run retries it" in error["message"] and "b2p -v" in error["message"]
    tracebacks = [e for e in entries if "exception" in e]
    assert bool(tracebacks) is verbose
    assert all(e["level"] == "debug" for e in tracebacks)
    assert_good_file_ingested(lake, good)
