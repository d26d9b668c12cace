"""`b2p report`: the numbers it prints come from the marts, converted to hours and percent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from ingest.cli import main

# (event_date, slot_type, site_id, site_name, slot_impressions, capacity, monetized, unsold)
ROWS = [
    (dt.date(2026, 11, 1), "preroll", 1, "Site A", 10, 7200.0, 1800.0, 5400.0),
    (dt.date(2026, 11, 2), "preroll", 2, "Site B", 5, 3600.0, 1800.0, 1800.0),
    (dt.date(2026, 11, 2), "overlay", 1, "Site A", 3, 0.0, 0.0, 0.0),
]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "create table capacity_by_site (event_date date, slot_type varchar, site_id bigint, "
            "site_name varchar, slot_impressions bigint, capacity_seconds double, "
            "monetized_seconds double, unsold_seconds double)"
        )
        connection.executemany("insert into capacity_by_site values (?,?,?,?,?,?,?,?)", ROWS)
    return path


def test_summary_in_hours_and_percent_per_slot_type(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert "2026-11-01 .. 2026-11-02" in out
    preroll = next(line for line in out.splitlines() if line.startswith("preroll"))
    # 15 slots; 10800 s = 3.0 h capacity, 3600 s = 1.0 h monetized, 2.0 h unsold, 1/3 sold
    assert preroll.split() == ["preroll", "15", "3.0", "1.0", "2.0", "33.3%"]
    overlay = next(line for line in out.splitlines() if line.startswith("overlay"))
    assert overlay.split()[-1] == "-"  # no capacity: no sell-through, not a division error


def test_sql_runs_read_only_and_aligns_text_left(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = (
        "select site_name, sum(capacity_seconds) as capacity "
        "from capacity_by_site group by 1 order by 1"
    )
    assert main(["report", "--warehouse", str(warehouse), "--sql", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("Site A ") and lines[2].endswith("7,200.000")
    assert lines[3].startswith("Site B ") and lines[3].endswith("3,600.000")


def test_a_failing_query_is_a_message_and_changes_nothing(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delete = "delete from capacity_by_site"
    assert main(["report", "--warehouse", str(warehouse), "--sql", delete]) == 1
    err = capsys.readouterr().err
    assert "the query failed" in err and "read-only" in err and "Traceback" not in err
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("select count(*) from capacity_by_site").fetchone() == (3,)


def test_a_warehouse_without_marts_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert main(["report", "--warehouse", str(empty)]) == 1
    assert "run `dbt build" in capsys.readouterr().err


def test_html_on_a_warehouse_without_every_mart_says_what_to_run(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.html"
    assert main(["report", "--warehouse", str(warehouse), "--html", str(target)]) == 1
    err = capsys.readouterr().err
    assert "capacity_by_site_section" in err and "run `dbt build" in err
    assert not target.exists() and not list(tmp_path.glob("*.partial"))


def test_a_bad_date_is_a_usage_error(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--warehouse", str(warehouse), "--from", "1 Nov"])
    assert exit_info.value.code == 2
    assert "'1 Nov' is not a date; use YYYY-MM-DD" in capsys.readouterr().err


def test_the_summary_takes_a_date_range_and_a_site(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--from", "2026-11-02", "--to", "2026-11-02", "--site", "Site B"]
    assert main(["report", "--warehouse", str(warehouse), *arguments]) == 0
    out = capsys.readouterr().out
    assert "2026-11-02 .. 2026-11-02" in out and "site Site B" in out
    preroll = next(line for line in out.splitlines() if line.startswith("preroll"))
    assert preroll.split() == ["preroll", "5", "1.0", "0.5", "0.5", "50.0%"]
    assert not any(line.startswith("overlay") for line in out.splitlines())  # Site A's only
