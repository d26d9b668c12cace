from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.logs.contract import LAKE_SCHEMA
from ingest.logs.lake import (
    IngestLog,
    VersionCommit,
    etag_token,
    log_key,
    partition_key,
    source_id_for,
)
from ingest.storage import LocalStorage


def test_source_id_is_a_readable_slug_plus_a_hash_of_the_uri() -> None:
    uri = "s3://fw-logs/2024/06/01/Net_123_v4_2024060112_0.csv.gz"
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    assert source_id_for(uri) == f"net-123-v4-2024060112-0-{digest}"
    assert source_id_for(uri) == source_id_for(uri)
    other = "s3://fw-logs/2024/06/02/Net_123_v4_2024060112_0.csv.gz"
    assert source_id_for(other) != source_id_for(uri)


@pytest.mark.parametrize("name", ["_x.csv.gz", ".csv.gz", "___.gz", "日本.csv"])
def test_source_id_never_hidden_from_athena(name: str) -> None:
    source_id = source_id_for(f"/data/{name}")
    assert source_id[0].isalnum()
    assert "/" not in source_id


def test_partition_key_uses_utc_date_and_unpadded_hour() -> None:
    hour = int(dt.datetime(2024, 6, 1, 7, tzinfo=dt.UTC).timestamp() * 1000)
    assert partition_key(hour, "f-1") == "v4_events/event_date=2024-06-01/event_hour=7/f-1.parquet"


def test_etags_become_safe_key_segments() -> None:
    assert (
        etag_token('"9b2cf535f27731c974343645a3985328-3"') == "9b2cf535f27731c974343645a3985328-3"
    )
    assert log_key("f-1", "12-345") == "_ingest/log/f-1/12-345.json"
    assert etag_token("a/b c") == "a_b_c"


def _rows(times: list[dt.datetime]) -> pa.Table:
    n = len(times)
    columns = {
        name: pa.nulls(n, field.type)
        for name, field in zip(LAKE_SCHEMA.names, LAKE_SCHEMA, strict=True)
    }
    columns["transaction_id"] = pa.array([f"t{i}" for i in range(n)])
    columns["event_time"] = pa.array(times, pa.timestamp("ms"))
    return pa.table(list(columns.values()), schema=LAKE_SCHEMA)


def test_rows_go_to_their_hour_and_commit_together(tmp_path) -> None:
    lake = LocalStorage(tmp_path)
    times = [
        dt.datetime(2024, 6, 1, 23, 59, 59, 999000),
        dt.datetime(2024, 6, 2, 0, 0),
        dt.datetime(2024, 6, 1, 23, 0),
    ]
    with VersionCommit(lake, "src-1", "e1").staged() as outputs:
        writer = outputs.partitions
        writer.write(_rows(times))
        writer.finish()
        assert not list(tmp_path.rglob("*.parquet"))  # nothing visible before the commit
    assert writer.keys == [
        "v4_events/event_date=2024-06-01/event_hour=23/src-1.parquet",
        "v4_events/event_date=2024-06-02/event_hour=0/src-1.parquet",
    ]
    late = pq.read_table(tmp_path / writer.keys[0], partitioning=None)
    assert late.column("transaction_id").to_pylist() == ["t0", "t2"]
    assert late.schema == LAKE_SCHEMA
    metadata = pq.ParquetFile(tmp_path / writer.keys[1]).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert writer.rows_written == 3


def test_low_cardinality_columns_are_dictionary_encoded_and_ids_are_not(tmp_path) -> None:
    """Dictionary pages shrink what Athena scans; a per-event id would gain nothing."""
    lake = LocalStorage(tmp_path)
    rows = _rows([dt.datetime(2024, 6, 1, 12, 0, i) for i in range(50)])
    rows = rows.set_column(
        rows.schema.get_field_index("event_name"),
        "event_name",
        pa.array(["slotImpression", "defaultImpression"] * 25),
    )
    with VersionCommit(lake, "src-1", "e1").staged() as outputs:
        writer = outputs.partitions
        writer.write(rows)
    row_group = pq.ParquetFile(tmp_path / writer.keys[0]).metadata.row_group(0)
    encodings = {
        row_group.column(i).path_in_schema: row_group.column(i).encodings
        for i in range(row_group.num_columns)
    }
    assert "RLE_DICTIONARY" in encodings["event_name"]
    assert "RLE_DICTIONARY" in encodings["time_position_class"]
    assert "RLE_DICTIONARY" not in encodings["transaction_id"]


def test_an_error_discards_every_partition_and_the_rejects(tmp_path) -> None:
    lake = LocalStorage(tmp_path)
    with pytest.raises(RuntimeError), VersionCommit(lake, "src-1", "e1").staged() as outputs:
        outputs.partitions.write(_rows([dt.datetime(2024, 6, 1, 1), dt.datetime(2024, 6, 1, 2)]))
        outputs.partitions.finish()
        outputs.rejects.write([{"message": "m", "line": 2}])
        raise RuntimeError("truncated")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_ingest_log_lists_versions_from_keys(tmp_path) -> None:
    lake = LocalStorage(tmp_path)
    log = IngestLog(lake)
    log.write({"source_id": "a-1", "etag": "e1", "status": "ok"})
    log.write({"source_id": "b-2", "etag": '"x-2"', "status": "quarantined"})
    assert log.logged_versions() == {("a-1", "e1"), ("b-2", "x-2")}
    [(key, record)] = list(log.records_for("a-1"))
    assert key == "_ingest/log/a-1/e1.json"
    assert record == json.loads((tmp_path / key).read_text())


def _walk_deleting(victims: list[Path]):
    """`os.walk` as another run sees it: between reading a folder and the caller's `stat` of
    its entries, the other run deletes `victims` (records it just completed)."""
    real_walk = os.walk

    def walk(top, *args, **kwargs):
        for dirpath, dirnames, filenames in real_walk(top, *args, **kwargs):
            for victim in victims:
                if victim.parent == Path(dirpath) and victim.exists():
                    victim.unlink()
            yield dirpath, dirnames, filenames

    return walk


def test_records_deleted_by_another_run_while_listed_are_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs on one lake: run B lists `_ingest/intent/<id>/` while run A, done with the
    same file, deletes its intent record. The listing is a snapshot without it (issue 11: one
    run of three failed with FileNotFoundError here)."""
    lake = LocalStorage(tmp_path)
    log = IngestLog(lake)
    log.write({"source_id": "a-1", "etag": "e1", "status": "ok", "output_keys": ["x"]})
    theirs = log.write_intent("a-1", "e1", "0ther", ["x"])
    mine = log.write_intent("a-1", "e1", "m1ne", ["x"])
    monkeypatch.setattr(os, "walk", _walk_deleting([tmp_path / theirs]))

    keys = [key for key, _ in log.records_for("a-1")]
    assert keys == ["_ingest/log/a-1/e1.json", mine]
    assert [info.key for info in lake.list("_ingest/intent/")] == [mine]
    assert log.logged_versions() == {("a-1", "e1")}
    assert log.remove_settled_intents({("a-1", "e1")}) == 1  # mine; theirs was gone already


def test_two_attempts_at_one_version_interleaved_leave_one_version(tmp_path: Path) -> None:
    """Attempt B stages while attempt A completes (deleting B's intent as another attempt's
    record); B then completes too. The outputs are the same rows under the same names."""
    lake = LocalStorage(tmp_path)
    rows = _rows([dt.datetime(2024, 6, 1, 1), dt.datetime(2024, 6, 1, 2)])
    first, second = VersionCommit(lake, "src-1", "e1"), VersionCommit(lake, "src-1", "e1")
    with first.staged() as outputs:
        outputs.partitions.write(rows)
    with second.staged() as outputs:
        outputs.partitions.write(rows)
        record = {"source_id": "src-1", "etag": "e1", "status": "ok"}
        record["output_keys"] = outputs.partitions.keys
        first.complete(record)
    second.complete(record)

    visible = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*"))
    assert visible == ["_ingest/log/src-1/e1.json", *record["output_keys"]]
