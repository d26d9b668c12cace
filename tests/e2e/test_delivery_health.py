"""Delivery health and source freshness, against what the sample generator wrote.

The expected hours and their volumes come from the generator's own manifest (which log files it
wrote, for which hour) and from the files' records counted with the csv module, never from the
lake or the models. Five days of traffic, so that the later days have the three days of history
the low-volume rule needs.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.cli import main as b2p
from tests.infra.cfn import REPO_ROOT, load_template
from tests.support.dbt import DbtProject

pytestmark = pytest.mark.e2e

DAYS = 5
START = dt.date(2026, 11, 1)
REMOVED_HOUR = (dt.date(2026, 11, 2), 10)  # its files never arrive
THINNED_HOUR = (dt.date(2026, 11, 5), 14)  # arrives with a tenth of its records
KEPT_SHARE = 0.1
HOUR_KEY = re.compile(r"^logs/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\.csv\.gz$")

Hour = tuple[dt.date, int]


def hour_of(key: str) -> Hour | None:
    match = HOUR_KEY.match(key)
    if not match:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    return dt.date(year, month, day), hour


def records(content: bytes) -> list[list[str]]:
    """The data records of a sample file (header dropped; quoted newlines are one record)."""
    text = gzip.decompress(content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))[1:]


def write_records(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([header, *rows])
    path.write_bytes(gzip.compress(buffer.getvalue().encode("utf-8")))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("health-sample")
    arguments = ["--start", START.isoformat(), "--days", str(DAYS), "--slots-per-hour", "40"]
    assert b2p(["sample", "--out", str(out), "--seed", "5", *arguments]) == 0
    return out


def written_hours(sample: Path) -> dict[Hour, list[str]]:
    """Log files per hour, from the generator's manifest."""
    manifest = json.loads((sample / "sample_manifest.json").read_text())
    hours: dict[Hour, list[str]] = {}
    for key in manifest["files"]:
        hour = hour_of(key)
        if hour is not None:
            hours.setdefault(hour, []).append(key)
    return hours


def build(work: Path, sample: Path, logs: Path) -> DbtProject:
    project = DbtProject(work=work, lake=work / "lake")
    shutil.copytree(sample / "dimensions", project.lake / "dimensions")
    assert b2p(["ingest", "--source", str(logs), "--lake", str(project.lake)]) == 0
    project.run("build", "--select", "+dq_freewheel__delivery_health")
    return project


def health(project: DbtProject) -> dict[Hour, dict[str, object]]:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        result = connection.execute("select * from dq_freewheel__delivery_health")
        columns = [c[0] for c in result.description]
        rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    assert {row["network_id"] for row in rows} == {516_410}, "the sample has one network"
    return {(row["event_date"], row["event_hour"]): row for row in rows}


def every_hour(first: Hour, last: Hour) -> list[Hour]:
    start = dt.datetime.combine(first[0], dt.time(first[1]))
    end = dt.datetime.combine(last[0], dt.time(last[1]))
    count = int((end - start).total_seconds() // 3600) + 1
    moments = [start + dt.timedelta(hours=n) for n in range(count)]
    return [(moment.date(), moment.hour) for moment in moments]


@pytest.fixture(scope="module")
def full(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    return build(tmp_path_factory.mktemp("health-full"), sample, sample / "logs")


def test_the_full_sample_has_every_hour_it_wrote_and_no_gap(full: DbtProject, sample: Path) -> None:
    hours = written_hours(sample)
    rows = health(full)
    assert sorted(rows) == every_hour(min(hours), max(hours))
    assert set(hours) == set(rows), "the generator wrote a file for every hour in between"
    for hour, keys in hours.items():
        expected_events = sum(len(records((sample / key).read_bytes())) for key in keys)
        assert (rows[hour]["files"], rows[hour]["events"]) == (len(keys), expected_events), hour
    not_ok = {hour: row["delivery_status"] for hour, row in rows.items() if row["is_gap"]}
    assert not_ok == {}
    # the rule was exercised: the later days are judged against at least 3 earlier days
    assert sum(row["history_days"] >= 3 for row in rows.values()) >= 24


@pytest.fixture(scope="module")
def with_gaps(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    work = tmp_path_factory.mktemp("health-gaps")
    logs = work / "logs"
    shutil.copytree(sample / "logs", logs)
    hours = written_hours(sample)
    for key in hours[REMOVED_HOUR]:
        (work / key).unlink()
    for key in hours[THINNED_HOUR]:
        content = (sample / key).read_bytes()
        text = gzip.decompress(content).decode("utf-8-sig")
        header = next(csv.reader(io.StringIO(text, newline="")))
        rows = records(content)
        write_records(work / key, header, rows[: max(1, int(len(rows) * KEPT_SHARE))])
    return build(work, sample, logs)


def test_exactly_the_removed_and_the_thinned_hour_are_flagged(with_gaps: DbtProject) -> None:
    rows = health(with_gaps)
    flagged = {hour: row["delivery_status"] for hour, row in rows.items() if row["is_gap"]}
    assert flagged == {REMOVED_HOUR: "missing", THINNED_HOUR: "low volume"}
    assert (rows[REMOVED_HOUR]["files"], rows[REMOVED_HOUR]["events"]) == (0, 0)
    thinned = rows[THINNED_HOUR]
    assert thinned["history_days"] == 4
    assert thinned["events"] < 0.5 * thinned["usual_events"]


def test_the_warn_level_test_reports_the_gaps_without_failing(with_gaps: DbtProject) -> None:
    result = with_gaps.run("test", "--select", "dq_freewheel__delivery_health")
    assert "Got 2 results, configured to warn if != 0" in result.stdout
    assert "has_no_rows_dq_freewheel__delivery_health" in result.stdout


# ---- dbt source freshness: the newest ingested_at of the last two days' partitions


@pytest.fixture(scope="module")
def recent_lake(tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    """Yesterday's and today's traffic, just ingested."""
    work = tmp_path_factory.mktemp("freshness")
    start = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    arguments = ["--start", start, "--days", "1", "--slots-per-hour", "5"]
    project = DbtProject(work=work, lake=work / "lake")
    assert b2p(["sample", "--out", str(work / "sample"), *arguments]) == 0
    logs = str(work / "sample" / "logs")
    assert b2p(["ingest", "--source", logs, "--lake", str(project.lake)]) == 0
    return project


def ingested_hours_ago(lake: Path, hours: float) -> None:
    """Rewrite every lake file as if it had been ingested `hours` ago."""
    moment = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=hours)
    for path in (lake / "v4_events").rglob("*.parquet"):
        table = pq.read_table(path, partitioning=None)
        index = table.schema.get_field_index("ingested_at")
        column = pa.array([moment] * len(table), type=table.schema.field(index).type)
        pq.write_table(table.set_column(index, "ingested_at", column), path)


def freshness(project: DbtProject) -> tuple[int, str]:
    result = project.run(
        "source", "freshness", "--select", "source:freewheel.v4_events", check=False
    )
    return result.returncode, result.stdout


def test_freshness_passes_warns_and_errors_by_ingest_time(recent_lake: DbtProject) -> None:
    code, out = freshness(recent_lake)
    assert code == 0 and "PASS freshness of freewheel.v4_events" in out, out[-2000:]
    ingested_hours_ago(recent_lake.lake, 4)
    code, out = freshness(recent_lake)
    assert code == 0 and "WARN freshness of freewheel.v4_events" in out, out[-2000:]
    ingested_hours_ago(recent_lake.lake, 7)
    code, out = freshness(recent_lake)
    # the phrase the stack's log metric filter counts (infra/bones2peaches.yaml)
    assert code != 0 and "ERROR STALE freshness of freewheel.v4_events" in out, out[-2000:]


def test_the_stack_alarm_counts_the_phrase_dbt_prints_for_a_stale_source() -> None:
    """The analytics stack's metric filter matches the ERROR STALE line asserted above."""
    template = load_template(REPO_ROOT / "infra" / "analytics.yaml")["Resources"]
    (metric_filter,) = [r for r in template.values() if r["Type"] == "AWS::Logs::MetricFilter"]
    assert metric_filter["Properties"]["FilterPattern"] == '"ERROR STALE"'
    assert metric_filter["Properties"]["LogGroupName"] == {"Fn::Sub": "/ecs/${ProjectName}"}
    (transformation,) = metric_filter["Properties"]["MetricTransformations"]
    alarm = template["SourceStaleAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
