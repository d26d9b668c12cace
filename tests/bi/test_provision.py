"""bi/provision.py's side that needs no Superset (make test): which connection each engine gets
from the environment, and what the bundle becomes once it is filled in."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from io import BytesIO
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.support.dbt import REPO


@pytest.fixture(scope="module")
def provision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("provision", REPO / "bi" / "provision.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["provision"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("B2P_BI_ENGINE", "B2P_BI_DATABASE_URI", "B2P_BI_SCHEMA", "B2P_BI_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_duckdb_is_opened_read_only_in_schema_main(
    provision: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.touch()
    monkeypatch.setenv("B2P_DUCKDB_PATH", str(warehouse))
    connection = provision.warehouse_from_env()
    assert connection.uri == f"duckdb:///{warehouse}"
    assert connection.engine_params == {"connect_args": {"read_only": True}}
    assert connection.schema == "main"


def test_athena_uses_the_stack_s_workgroup_and_glue_database(
    provision: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("B2P_BI_ENGINE", "athena")
    monkeypatch.setenv("B2P_ATHENA_REGION", "eu-west-1")
    monkeypatch.setenv("B2P_ATHENA_WORKGROUP", "bones2peaches")
    monkeypatch.setenv("B2P_BI_SCHEMA", "bones2peaches")
    connection = provision.warehouse_from_env()
    assert connection.uri == (
        "awsathena+rest://athena.eu-west-1.amazonaws.com:443/bones2peaches?work_group=bones2peaches"
    )
    assert connection.schema == "bones2peaches" and connection.engine_params == {}
    monkeypatch.setenv("B2P_ATHENA_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert provision.warehouse_from_env().uri.endswith(
        "?work_group=bones2peaches&endpoint_url=http%3A%2F%2F127.0.0.1%3A4566"
    )


def test_trino_needs_host_port_catalog_and_schema(
    provision: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("B2P_BI_ENGINE", "trino")
    for name, value in {"B2P_TRINO_HOST": "127.0.0.1", "B2P_TRINO_PORT": "8080"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("B2P_TRINO_CATALOG", raising=False)
    with pytest.raises(SystemExit, match="set B2P_TRINO_CATALOG"):
        provision.warehouse_from_env()
    monkeypatch.setenv("B2P_TRINO_CATALOG", "awsdatacatalog")
    monkeypatch.setenv("B2P_TRINO_SCHEMA", "b2p")
    connection = provision.warehouse_from_env()
    assert (connection.uri, connection.schema) == (
        "trino://superset@127.0.0.1:8080/awsdatacatalog",
        "b2p",
    )


def test_the_filled_bundle_points_every_dataset_at_the_warehouse(provision: ModuleType) -> None:
    connection = provision.Warehouse("trino://u@h:1/c", "marts")
    contents = provision.bundle_contents(connection)
    assert "__B2P_" not in "".join(contents.values())
    (database,) = [yaml.safe_load(t) for k, t in contents.items() if k.startswith("databases/")]
    assert database["sqlalchemy_uri"] == "trino://u@h:1/c" and "password" not in database
    datasets = [yaml.safe_load(t) for k, t in contents.items() if k.startswith("datasets/")]
    assert {d["schema"] for d in datasets} == {"marts"}
    assert {d["database_uuid"] for d in datasets} == {database["uuid"]}
    with zipfile.ZipFile(BytesIO(provision.bundle_zip(contents))) as archive:
        assert "ad_capacity/metadata.yaml" in archive.namelist()


def test_a_missing_warehouse_says_to_run_make_demo(
    provision: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("B2P_DUCKDB_PATH", str(tmp_path / "none.duckdb"))
    with pytest.raises(SystemExit, match="run `make demo` first"):
        provision.warehouse_from_env()


def test_a_password_in_the_uri_is_not_printed(provision: ModuleType) -> None:
    connection = provision.Warehouse("trino://user:s3cret@host:443/catalog", "s")
    assert "s3cret" not in connection.redacted() and "***" in connection.redacted()
