"""`b2p dimensions` end to end against the fake FreeWheel API, plus its configuration."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest import cli
from ingest.errors import UserError
from ingest.names.api_errors import FreeWheelApiError
from ingest.names.command import EntityMapping, items_to_table, load_config
from ingest.names.paging import PagedResource
from ingest.names.snapshots import DIMENSION_SCHEMAS, read_snapshot, write_snapshot
from ingest.storage import LocalStorage
from ingest.structured_logging import configure_logging
from tests.support.fake_freewheel_api import (
    Delay,
    ExpireTokens,
    FakeFreeWheelApi,
    Status,
    sample_catalog,
)

USER = "ops@example.com"
PASSWORD = "pw-Kd93#xLq-never-logged"


@pytest.fixture
def creds_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREEWHEEL_USERNAME", USER)
    monkeypatch.setenv("FREEWHEEL_PASSWORD", PASSWORD)


@pytest.fixture
def api() -> Iterator[FakeFreeWheelApi]:
    with FakeFreeWheelApi(USER, PASSWORD, sample_catalog()) as server:
        yield server


def run_b2p(lake: Path, api: FakeFreeWheelApi, *extra: str, verbose: bool = False) -> int:
    argv = [*(["-v"] if verbose else []), "dimensions", "--lake", str(lake)]
    argv += ["--base-url", api.base_url]
    return cli.main([*argv, "--timeout-seconds", "0.5", "--deadline-seconds", "60", *extra])


def snapshot_rows(lake: Path, entity: str) -> list[tuple[Any, ...]]:
    table = read_snapshot(LocalStorage(lake), entity)
    assert table.schema.equals(DIMENSION_SCHEMAS[entity])
    return list(zip(*(table.column(n).to_pylist() for n in table.column_names), strict=True))


def expected_rows(entity: str) -> list[tuple[Any, ...]]:
    items = sample_catalog()[entity]
    if entity == "site_sections":
        return sorted((i["id"], i["name"], i["site_id"]) for i in items)
    return sorted(((i["id"], i["name"]) for i in items), key=lambda row: row[0])


def seed_previous_snapshots(lake: Path) -> dict[str, bytes]:
    storage = LocalStorage(lake)
    old = {
        "sites": pa.table({"site_id": [1], "site_name": ["old site"]}),
        "site_sections": pa.table(
            {"site_section_id": [2], "site_section_name": ["old section"], "site_id": [1]}
        ),
        "series": pa.table({"series_id": [3], "series_name": ["old series"]}),
    }
    return {
        entity: (lake / write_snapshot(storage, entity, t)).read_bytes()
        for entity, t in old.items()
    }


def current_bytes(lake: Path) -> dict[str, bytes]:
    return {e: (lake / f"dimensions/{e}/{e}.parquet").read_bytes() for e in DIMENSION_SCHEMAS}


def test_snapshots_come_out_complete_through_every_kind_of_fault(
    tmp_path: Path, api: FakeFreeWheelApi, creds_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    api.script(("sites", 2), Status(429, {"Retry-After": "1"}))
    api.script(("site_sections", 1), Status(500), Status(503))
    api.script(("site_sections", 2), ExpireTokens())
    api.script(("series", 1), Delay(1.5))  # past the 0.5 s timeout
    seed_previous_snapshots(tmp_path)

    assert run_b2p(tmp_path, api) == 0

    for entity in DIMENSION_SCHEMAS:
        assert snapshot_rows(tmp_path, entity) == expected_rows(entity)
    assert capsys.readouterr().out.strip() == "sites=1234 site_sections=1000 series=7"
    assert len(api.requests_to("auth")) == 2  # the first token, and one renewal after the 401
    sites_statuses = [r.status for r in api.requests_to("sites")]
    assert sites_statuses == [200, 429, 200, 200, 200]


def test_no_temp_files_are_left_beside_the_snapshots(
    tmp_path: Path, api: FakeFreeWheelApi, creds_env: None
) -> None:
    assert run_b2p(tmp_path, api) == 0
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "dimensions/series/series.parquet",
        "dimensions/site_sections/site_sections.parquet",
        "dimensions/sites/sites.parquet",
    ]


def test_bad_credentials_exit_1_and_leave_the_snapshots(
    tmp_path: Path,
    api: FakeFreeWheelApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FREEWHEEL_USERNAME", USER)
    monkeypatch.setenv("FREEWHEEL_PASSWORD", "not-the-password")
    before = seed_previous_snapshots(tmp_path)

    assert run_b2p(tmp_path, api) == 1

    err = capsys.readouterr().err
    assert "could not fetch sites from the FreeWheel API: bad FreeWheel credentials" in err
    assert "No dimension snapshot was changed" in err
    assert "Traceback" not in err
    assert current_bytes(tmp_path) == before


def test_missing_permission_on_the_last_entity_changes_no_snapshot(
    tmp_path: Path, creds_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = seed_previous_snapshots(tmp_path)
    with FakeFreeWheelApi(USER, PASSWORD, sample_catalog(), forbidden=["series"]) as server:
        assert run_b2p(tmp_path, server) == 1
        assert len(server.requests_to("sites")) == 4  # sites were fetched, yet not written

    err = capsys.readouterr().err
    assert "could not fetch series from the FreeWheel API: missing permission" in err
    assert current_bytes(tmp_path) == before


def test_no_credentials_is_a_clear_error(
    tmp_path: Path,
    api: FakeFreeWheelApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("FREEWHEEL_USERNAME", raising=False)
    monkeypatch.delenv("FREEWHEEL_PASSWORD", raising=False)

    assert run_b2p(tmp_path, api) == 1
    assert "no FreeWheel credentials" in capsys.readouterr().err
    assert api.requests == []


def test_credentials_from_secrets_manager(
    tmp_path: Path, api: FakeFreeWheelApi, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.delenv("FREEWHEEL_USERNAME", raising=False)
    monkeypatch.delenv("FREEWHEEL_PASSWORD", raising=False)
    boto3.client("secretsmanager").create_secret(
        Name="b2p/freewheel-api", SecretString=json.dumps({"username": USER, "password": PASSWORD})
    )

    assert run_b2p(tmp_path, api, "--secret-id", "b2p/freewheel-api") == 0
    assert snapshot_rows(tmp_path, "series") == expected_rows("series")


def test_snapshots_can_go_to_an_s3_lake(
    tmp_path: Path, api: FakeFreeWheelApi, aws: str, creds_env: None
) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="b2p-lake")

    assert cli.main(["dimensions", "--lake", "s3://b2p-lake/prod", "--base-url", api.base_url]) == 0

    # read back with a plain client, not through the project's storage layer
    for entity in DIMENSION_SCHEMAS:
        body = s3.get_object(Bucket="b2p-lake", Key=f"prod/dimensions/{entity}/{entity}.parquet")
        local = tmp_path / f"{entity}.parquet"
        local.write_bytes(body["Body"].read())
        table = pq.read_table(local)
        rows = list(zip(*(c.to_pylist() for c in table.columns), strict=True))
        assert rows == expected_rows(entity)


def test_api_config_maps_other_shapes_and_field_names(tmp_path: Path, creds_env: None) -> None:
    data = {
        "publisher_sites": [{"siteId": str(5 - i), "label": f"S{5 - i}"} for i in range(5)],
        "sections": [{"sectionId": 7, "label": "Home", "site": {"id": 5}}],
        "shows": [{"showId": 8, "label": "News"}, {"showId": 8, "label": "News (dup)"}],
    }

    def envelope(name: str, items: list[Any], page: int, total: int) -> Any:
        return {"result": {"items": items, "count": total}}

    config = {
        "per_page": 2,
        "token_path": "oauth/token",
        "entities": {
            "sites": {
                "path": "api/publisher_sites",
                "items_key": "result.items",
                "id_field": "siteId",
                "name_field": "label",
                "total_key": "result.count",
                "query": {"status": "ACTIVE"},
            },
            "site_sections": {
                "path": "api/sections",
                "items_key": "result.items",
                "id_field": "sectionId",
                "name_field": "label",
                "parent_field": "site.id",
            },
            "series": {
                "path": "api/shows",
                "items_key": "result.items",
                "id_field": "showId",
                "name_field": "label",
                "per_page": 10,
            },
        },
    }
    config_file = tmp_path / "api.json"
    config_file.write_text(json.dumps(config))
    with FakeFreeWheelApi(
        USER, PASSWORD, data, envelope=envelope, token_path="/oauth/token", resource_prefix="/api/"
    ) as server:
        rc = run_b2p(tmp_path / "lake", server, "--api-config", str(config_file))
        site_pages = [
            (r.query["page"], r.query["per_page"], r.query["status"])
            for r in server.requests_to("publisher_sites")
        ]

    assert rc == 0
    assert site_pages == [("1", "2", "ACTIVE"), ("2", "2", "ACTIVE"), ("3", "2", "ACTIVE")]
    lake = tmp_path / "lake"
    assert snapshot_rows(lake, "sites") == [(1, "S1"), (2, "S2"), (3, "S3"), (4, "S4"), (5, "S5")]
    assert snapshot_rows(lake, "site_sections") == [(7, "Home", 5)]
    assert snapshot_rows(lake, "series") == [(8, "News")]  # first of a duplicated id wins


def test_unknown_config_key_is_rejected(
    tmp_path: Path, api: FakeFreeWheelApi, creds_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "api.json"
    config_file.write_text(json.dumps({"entities": {"sites": {"id_feild": "x"}}}))

    assert run_b2p(tmp_path, api, "--api-config", str(config_file)) == 1
    assert "entities.sites: unknown key(s) id_feild" in capsys.readouterr().err
    assert api.requests == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"per_page": 0}, "'per_page' must be an integer of at least 1"),
        ({"timeout_seconds": "30"}, "'timeout_seconds' must be a positive number"),
        ({"entities": {"artists": {}}}, "unknown key(s) artists"),
        ({"entities": {"sites": {"parent_field": "x"}}}, "unknown key(s) parent_field"),
        ({"entities": {"series": {"query": {"a": [1]}}}}, "'query' must be an object"),
    ],
)
def test_config_errors_name_the_key(document: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=r"^cfg") as caught:
        load_config(document, source="cfg")
    assert message in str(caught.value)


def test_config_defaults_and_overrides() -> None:
    config = load_config({"per_page": 100, "entities": {"series": {"per_page": 20}}})
    by_entity = {m.entity: m for m in config.entities}

    assert config.client.base_url == "https://api.freewheel.tv"
    assert config.client.api_requests_per_second == 20
    assert config.client.auth_requests_per_second == 3
    assert by_entity["sites"].resource.path == "services/v4/sites"
    assert by_entity["sites"].resource.per_page == 100
    assert by_entity["series"].resource.per_page == 20
    assert by_entity["site_sections"].parent_field == "site_id"
    assert (by_entity["sites"].id_field, by_entity["sites"].name_field) == ("id", "name")


def test_help_documents_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["dimensions", "--help"])
    out = capsys.readouterr().out
    for default in (
        "https://api.freewheel.tv",
        "auth/token",
        "services/v4/site_sections",
        '"per_page": 500',
        '"parent_field": "site_id"',
        "FREEWHEEL_PASSWORD",
    ):
        assert default in out


SECTIONS = EntityMapping(
    entity="site_sections",
    resource=PagedResource("site_sections", "x"),
    parent_field="site_id",
)


def test_items_to_table_types_ids_and_keeps_nulls() -> None:
    table = items_to_table(
        SECTIONS,
        [
            {"id": "12", "name": "b", "site_id": 3.0},
            {"id": 11, "name": None, "site_id": None},
            {"id": 12, "name": "dup", "site_id": 4},
        ],
    )
    assert table.to_pydict() == {
        "site_section_id": [11, 12],
        "site_section_name": [None, "b"],
        "site_id": [None, 3],
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "no id"}, "item #1 has no 'id' (its keys: name)"),
        ({"id": "abc", "name": "x"}, "'id' is 'abc', not an integer id"),
        ({"id": True, "name": "x"}, "not an integer id"),
        ({"id": 1, "site_id": "x1"}, "'site_id' is 'x1'"),
        ({"id": "--5", "name": "x"}, "'id' is '--5', not an integer id"),
        ({"id": "\u00b2", "name": "x"}, "'id' is '\u00b2', not an integer id"),  # superscript 2
        ({"id": "\u0665", "name": "x"}, "not an integer id"),  # Arabic-Indic digit five
        ({"id": "-", "name": "x"}, "'id' is '-', not an integer id"),
        ({"id": 2**63, "name": "x"}, "not an integer id (64-bit)"),
        ({"id": "9223372036854775808", "name": "x"}, "not an integer id (64-bit)"),
        ({"id": 1e300, "name": "x"}, "not an integer id (64-bit)"),
    ],
)
def test_items_to_table_rejects_unusable_ids(item: dict[str, Any], message: str) -> None:
    with pytest.raises(FreeWheelApiError) as caught:
        items_to_table(SECTIONS, [item])
    assert message in str(caught.value)


def test_items_to_table_accepts_negative_and_64_bit_boundary_ids() -> None:
    table = items_to_table(
        SECTIONS,
        [{"id": " -5 ", "name": "a"}, {"id": str(2**63 - 1), "name": "b"}, {"id": -(2**63)}],
    )
    assert table.column("site_section_id").to_pylist() == [-(2**63), -5, 2**63 - 1]


def test_a_server_that_caps_the_page_size_still_gives_complete_snapshots(
    tmp_path: Path, creds_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # asked for 500 per page, the server sends at most 100: short pages are not the end
    with FakeFreeWheelApi(USER, PASSWORD, sample_catalog(), max_per_page=100) as server:
        assert run_b2p(tmp_path, server) == 0
        site_pages = [r.query["page"] for r in server.requests_to("sites")]

    assert capsys.readouterr().out.strip() == "sites=1234 site_sections=1000 series=7"
    for entity in DIMENSION_SCHEMAS:
        assert snapshot_rows(tmp_path, entity) == expected_rows(entity)
    assert site_pages == [str(page) for page in range(1, 15)]  # 13 pages, then an empty one


# -- no secret in any output ---------------------------------------------------------------


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "text"])
def test_neither_password_nor_token_appears_in_any_output(
    tmp_path: Path,
    creds_env: None,
    json_lines: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(
        cli, "configure_logging", lambda verbose=False: configure_logging(verbose, json_lines)
    )
    outputs: list[str] = []
    with FakeFreeWheelApi(USER, PASSWORD, sample_catalog(), forbidden=["series"]) as server:
        # a run that renews its token and retries, then fails with a traceback in the debug log
        server.script(("sites", 2), ExpireTokens(), Status(429, {"Retry-After": "0"}))
        assert run_b2p(tmp_path, server, verbose=True) == 1
        # a run with a wrong password
        monkeypatch.setenv("FREEWHEEL_PASSWORD", "wrong-" + PASSWORD)
        assert run_b2p(tmp_path, server, verbose=True) == 1
        monkeypatch.setenv("FREEWHEEL_PASSWORD", PASSWORD)
        # a run that dies of an unexpected error after fetching: its traceback, chain included
        server.forbidden.clear()
        monkeypatch.setattr("ingest.names.command.write_tables", _explode)
        with pytest.raises(RuntimeError) as caught:
            run_b2p(tmp_path, server, verbose=True)
        logging.getLogger("test").exception("unexpected", exc_info=caught.value)
        outputs.append("".join(traceback.format_exception(caught.value)))
        tokens = list(server.issued_tokens)

    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]
    everything = "\n".join(outputs)
    assert len(tokens) == 3  # one per run that authenticated plus the renewal
    assert "Traceback" in captured.err  # the debug traceback really was logged
    assert "token refused, renewing it" in everything and "retrying" in everything
    for secret in [PASSWORD, *tokens]:
        assert secret not in everything


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("disk on fire")
