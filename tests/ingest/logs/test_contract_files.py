"""The log contract is declared once (ingest/logs/contract.py): every file that restates it is
generated from it by `make contract`, or checked against it here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from ingest.logs import contract, contract_files
from ingest.logs.contract import CONTRACT, LAKE_SCHEMA, LINEAGE, PARTITIONS, Column
from ingest.logs.contract_files import REGIONS, REPOSITORY, StaleFile
from ingest.logs.writers import DICTIONARY_COLUMNS
from ingest.sample.files import CONTRACT_ORDER
from tests.support.dbt_models import documented_columns

DERIVED_FILES = sorted({region.path for region in REGIONS})


def copy_derived_files(root: Path) -> Path:
    for path in DERIVED_FILES:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(contract_files.REPOSITORY / path, root / path)
    return root


@pytest.mark.parametrize("region", REGIONS, ids=lambda r: f"{r.path} {r.name}".strip())
def test_every_derived_file_says_what_the_contract_says(region: contract_files.Region) -> None:
    contract_files.check(region)  # raises StaleFile naming the file and the columns


def test_make_contract_changes_nothing_in_a_current_tree(tmp_path: Path) -> None:
    root = copy_derived_files(tmp_path)
    assert contract_files.main([], root=root) == 0
    for path in DERIVED_FILES:
        assert (root / path).read_text() == (contract_files.REPOSITORY / path).read_text(), path


def test_a_stale_glue_definition_fails_naming_the_file_and_the_column(tmp_path: Path) -> None:
    root = copy_derived_files(tmp_path)
    stack = root / "infra/bones2peaches.yaml"
    stack.write_text(stack.read_text().replace("{Name: ad_id, Type: bigint},", "", 1))
    region = next(r for r in REGIONS if r.path == "infra/bones2peaches.yaml")
    with pytest.raises(StaleFile) as stale:
        contract_files.check(region, root)
    assert "infra/bones2peaches.yaml (v4_events columns)" in str(stale.value)
    assert "missing column(s) ad_id" in str(stale.value)
    assert "make contract" in str(stale.value)


def test_a_wrong_type_is_stale_too(tmp_path: Path) -> None:
    root = copy_derived_files(tmp_path)
    stack = root / "infra/bones2peaches.yaml"
    stack.write_text(
        stack.read_text().replace("Name: site_id, Type: bigint", "Name: site_id, Type: int")
    )
    region = next(r for r in REGIONS if r.path == "infra/bones2peaches.yaml")
    with pytest.raises(StaleFile, match="order, types or descriptions differ"):
        contract_files.check(region, root)


def test_adding_a_contract_column_is_one_edit_and_make_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dry run ARCHITECTURE.md describes: one Column more, `make contract`, and every derived
    file carries it; before the regeneration, the check names every stale file."""
    root = copy_derived_files(tmp_path)
    added = Column("creative_rendition_id", pa.int64(), False, "FreeWheel rendition id (ad rows).")
    monkeypatch.setattr(contract_files, "CONTRACT", (*CONTRACT, added))

    assert contract_files.main(["--check"], root=root) == 1
    stale = capsys.readouterr().err
    for path in DERIVED_FILES:
        assert f"{path}" in stale and "missing column(s) creative_rendition_id" in stale, stale

    assert contract_files.main([], root=root) == 0  # make contract
    assert contract_files.main(["--check"], root=root) == 0
    stack = (root / "infra/bones2peaches.yaml").read_text()
    assert "{Name: creative_rendition_id, Type: bigint}" in stack
    assert stack.index("Name: creative_rendition_id") < stack.index("Name: extra_columns")
    sources = (root / "models/staging/_freewheel__sources.yml").read_text()
    assert "- name: creative_rendition_id" in sources
    assert (
        "| creative_rendition_id | bigint | no | FreeWheel rendition id"
        in (root / "README.md").read_text()
    )
    macro = (root / "macros/contract/v4_events_columns.sql").read_text()
    assert "('creative_rendition_id', 'bigint')" in macro


def test_missing_markers_are_a_clear_error(tmp_path: Path) -> None:
    root = copy_derived_files(tmp_path)
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("<<< contract: columns", "end of table"))
    region = next(r for r in REGIONS if r.path == "README.md")
    with pytest.raises(StaleFile, match=r"README.md: expected one pair of marker lines"):
        contract_files.check(region, root)


# ---- the places that are checked rather than generated


def test_the_lake_schema_is_the_contract_then_the_lineage() -> None:
    assert LAKE_SCHEMA.names == [c.name for c in CONTRACT + LINEAGE]
    assert [LAKE_SCHEMA.field(c.name).type for c in CONTRACT + LINEAGE] == [
        c.type for c in CONTRACT + LINEAGE
    ]


def test_the_staging_model_documents_the_contract_s_columns() -> None:
    documented = documented_columns("stg_freewheel__v4_events")
    expected = [c.name for c in CONTRACT] + [p.name for p in PARTITIONS]
    assert sorted(documented) == sorted(expected), (
        "models/staging/_freewheel__models.yml (stg_freewheel__v4_events) is out of date with "
        f"the log contract: missing {sorted(set(expected) - set(documented))}, "
        f"extra {sorted(set(documented) - set(expected))}"
    )


def test_the_staging_unit_test_fixture_spells_out_every_lake_column() -> None:
    """The sql-format fixture of stg_freewheel__v4_events's unit test must name every column of
    the source (dbt cannot introspect a read_parquet source's types)."""
    path = REPOSITORY / "models/staging/_freewheel__models.yml"
    fixtures = [
        given["rows"]
        for test in yaml.safe_load(path.read_text()).get("unit_tests", [])
        if test["model"] == "stg_freewheel__v4_events"
        for given in test["given"]
        if given.get("format") == "sql" and "v4_events" in given["input"]
    ]
    assert fixtures, "no sql-format fixture of the v4_events source found"
    expected = [c.name for c in CONTRACT + LINEAGE] + [p.name for p in PARTITIONS]
    for fixture in fixtures:
        named = re.findall(r"\bas (\w+),?\s*$", fixture, flags=re.MULTILINE)
        missing = [name for name in expected if name not in named]
        extra = [name for name in named if name not in expected]
        assert not missing and not extra, (
            f"{path.relative_to(REPOSITORY)}: the unit test fixture of v4_events is out of date "
            f"with the log contract: missing {missing}, extra {extra}"
        )


def test_dictionary_encoded_columns_are_lake_columns() -> None:
    unknown = set(DICTIONARY_COLUMNS) - set(LAKE_SCHEMA.names)
    assert not unknown, (
        f"ingest/logs/writers.py DICTIONARY_COLUMNS names {unknown}: not lake columns"
    )


def test_the_sample_writes_every_contract_column_and_only_those() -> None:
    assert sorted(CONTRACT_ORDER) == sorted(contract.CONTRACT_NAMES), (
        "ingest/sample/files.py: its column order must hold each contract column once"
    )
