"""The `b2p` dispatcher: every subcommand reachable, only the invoked one imported, user errors
printed without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.cli import SUBCOMMANDS, main, requested_command


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("sample", "ingest", "dimensions", "report"):
        assert name in out


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_subcommand_has_its_own_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: b2p {name}" in capsys.readouterr().out


def test_the_command_is_found_after_global_flags() -> None:
    assert requested_command(["-v", "ingest", "--source", "report"]) == "ingest"
    assert requested_command(["--help"]) is None


def test_an_ingest_process_does_not_load_duckdb_or_boto3() -> None:
    """Each ingest worker's memory budget is tight: unused engines stay out of the process."""
    probe = (
        "import sys; from ingest.cli import build_parser; build_parser('ingest'); "
        "print(sorted(m for m in ('duckdb', 'boto3', 'botocore') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_user_error_exits_1_with_its_message_and_no_traceback(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.duckdb"
    assert main(["report", "--warehouse", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"no warehouse at {missing}" in err
    assert "Traceback" not in err


def test_a_bad_thread_count_in_the_environment_is_a_usage_error_of_ingest_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("B2P_INGEST_THREADS", "none")
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", "--source", str(tmp_path), "--lake", str(tmp_path / "lake")])
    assert exit_info.value.code == 2
    assert "--threads: 'none' is not a whole number" in capsys.readouterr().err
    assert main(["sample", "--out", str(tmp_path / "sample"), "--days", "1"]) == 0
