"""Crashes and overlapping runs: `b2p ingest` SIGKILLed at random moments, two runs at once, a
crash half-way through committing a re-delivered version, and the temp-file sweep."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from ingest.logs.attempt import ingest_object
from ingest.logs.lake import EVENTS_PREFIX
from ingest.storage import TEMP_PREFIX, LocalStorage
from tests.support.dbt import REPO
from tests.support.synthetic_lake import (
    SyntheticFile,
    assert_lake_holds_exactly,
    event_keys_by_name,
    summarise,
    synthetic_file,
    synthetic_files,
    write_local,
)


def b2p_ingest(source: Path, lake: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`b2p ingest` as its own process group, so a kill takes its worker processes too."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "ingest",
            "--source",
            str(source),
            "--lake",
            str(lake),
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[bytes]) -> int:
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    return process.returncode


def temp_files(lake: Path) -> list[Path]:
    return [path for path in lake.rglob(f"{TEMP_PREFIX}*")]


def logged_count(lake: Path) -> int:
    return len(list(lake.glob("_ingest/log/*/*.json")))


@pytest.fixture
def many_files(tmp_path: Path) -> tuple[Path, list[SyntheticFile]]:
    files = synthetic_files(30, seed=11, rows=3000)
    write_local(tmp_path / "source", files)
    return tmp_path / "source", files


def test_runs_killed_at_random_moments_then_one_full_run_equal_a_clean_run(
    many_files: tuple[Path, list[SyntheticFile]], tmp_path: Path
) -> None:
    source, files = many_files
    clean_lake, lake = tmp_path / "clean", tmp_path / "lake"
    started = time.monotonic()
    finish(b2p_ingest(source, clean_lake))
    full_run = time.monotonic() - started

    rng = random.Random(5)
    completed_after_kill: list[int] = []
    for attempt in range(5):
        process = b2p_ingest(source, lake, "--workers", str(1 + attempt % 2))
        if attempt == 0:  # surely mid-run, however loaded the machine: after its first file
            while logged_count(lake) == 0 and process.poll() is None:
                time.sleep(0.005)
        else:
            time.sleep(rng.uniform(0.3, 0.9) * full_run)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        completed_after_kill.append(logged_count(lake))
    assert completed_after_kill[0] < len(files)  # the first kill did interrupt the work
    finish(b2p_ingest(source, lake))

    assert temp_files(lake) == []
    expected = assert_lake_holds_exactly(LocalStorage(clean_lake), files)
    actual = assert_lake_holds_exactly(LocalStorage(lake), files)
    assert actual.keys == expected.keys  # same visible objects, nothing extra
    assert actual.rows_per_file_and_partition == expected.rows_per_file_and_partition
    assert actual.rows == expected.rows


def test_two_runs_started_together_end_in_the_same_lake_as_one_run(
    many_files: tuple[Path, list[SyntheticFile]], tmp_path: Path
) -> None:
    source, files = many_files
    clean_lake, lake = tmp_path / "clean", tmp_path / "lake"
    finish(b2p_ingest(source, clean_lake))

    first, second = b2p_ingest(source, lake), b2p_ingest(source, lake, "--workers", "2")
    finish(first)
    finish(second)

    assert temp_files(lake) == []
    expected = assert_lake_holds_exactly(LocalStorage(clean_lake), files)
    actual = assert_lake_holds_exactly(LocalStorage(lake), files)
    assert actual.keys == expected.keys
    assert actual.rows == expected.rows


def test_ten_pairs_of_concurrent_runs_never_fail_and_each_ends_as_one_run(
    tmp_path: Path,
) -> None:
    """Issue 11: in 3 of 10 pairs one run failed (FileNotFoundError on a record the other run
    was deleting). Small files, so the two runs overlap on many commits."""
    files = synthetic_files(24, seed=12, rows=300)
    source = tmp_path / "source"
    write_local(source, files)
    finish(b2p_ingest(source, tmp_path / "clean"))
    expected = assert_lake_holds_exactly(LocalStorage(tmp_path / "clean"), files)

    for pair in range(10):
        lake = tmp_path / f"lake-{pair}"
        runs = [b2p_ingest(source, lake), b2p_ingest(source, lake, "--workers", "2")]
        for run in runs:
            finish(run)  # exit 0, or the assertion shows its stderr
        actual = assert_lake_holds_exactly(LocalStorage(lake), files)
        assert actual.keys == expected.keys
        assert actual.rows == expected.rows
        assert temp_files(lake) == []


class Killed(BaseException):
    """Stands in for SIGKILL inside the process: nothing after it runs, no except clause."""


class LakeKilledAfterCommits(LocalStorage):
    """A local lake whose process 'dies' when it is about to commit its n+1-th event file."""

    def __init__(self, root: Path, commits_before_kill: int) -> None:
        super().__init__(root)
        self.commits_left = commits_before_kill

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        with super().open_write(key) as handle:
            yield handle
            if key.startswith(EVENTS_PREFIX):
                if self.commits_left == 0:
                    raise Killed
                self.commits_left -= 1


def test_a_crash_while_committing_a_redelivered_version_is_completed_by_the_next_run(
    tmp_path: Path,
) -> None:
    rng = random.Random(8)
    old = synthetic_file("2024/06/01/a.csv.gz", rng, [6, 7], 80)
    new = synthetic_file("2024/06/01/a.csv.gz", rng, [7, 8, 9], 50)
    source = LocalStorage(tmp_path / "source")
    write_local(tmp_path / "source", [old])
    [info] = source.list()
    ingest_object(source, info.key, info.etag, LocalStorage(tmp_path / "lake"))

    write_local(tmp_path / "source", [new])
    os.utime(tmp_path / "source" / new.name, ns=(2_000_000_000, 2_000_000_000))
    [info] = source.list()
    dying = LakeKilledAfterCommits(tmp_path / "lake", commits_before_kill=1)
    with pytest.raises(Killed):
        ingest_object(source, info.key, info.etag, dying)
    # the crash left one new partition beside the old version's, whose log record stands
    mixed = summarise(dying)
    assert "v4_events/event_date=2024-06-01/event_hour=6" in event_keys_by_name(dying)
    assert mixed.rows_per_partition != new.rows_per_partition
    assert mixed.rows_per_partition != old.rows_per_partition

    lake = LocalStorage(tmp_path / "lake")
    result = ingest_object(source, info.key, info.etag, lake)

    assert result.status == "ok"
    summary = assert_lake_holds_exactly(lake, [new])
    assert summary.rows_per_partition == new.rows_per_partition
    assert event_keys_by_name(lake) == {
        f"v4_events/event_date=2024-06-01/event_hour={hour}" for hour in (7, 8, 9)
    }
    assert temp_files(tmp_path / "lake") == []


def test_the_sweep_removes_abandoned_temp_files_and_spares_a_live_writer_s(
    tmp_path: Path,
) -> None:
    lake = LocalStorage(tmp_path)
    partition = tmp_path / "v4_events" / "event_date=2024-06-01" / "event_hour=1"
    partition.mkdir(parents=True)
    abandoned = partition / f"{TEMP_PREFIX}killed"
    abandoned.write_bytes(b"half a parquet file")  # no writer holds its lock any more

    with lake.open_write("v4_events/event_date=2024-06-01/event_hour=1/x.parquet") as handle:
        handle.write(b"being written")
        handle.flush()
        assert lake.sweep_temp_files() == 1
        [live] = temp_files(tmp_path)
        assert live.read_bytes() == b"being written"

    assert temp_files(tmp_path) == []
    assert (partition / "x.parquet").read_bytes() == b"being written"
