"""`b2p dimensions --from-files`: companion name files become the same three snapshots as the
API fetch, all or none, with errors that name the file and line."""

from __future__ import annotations

import codecs
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from ingest import cli
from ingest.names.snapshots import DIMENSION_SCHEMAS, read_snapshot
from ingest.storage import LocalStorage
from tests.ingest.names.test_dimensions import current_bytes, seed_previous_snapshots

SITES = 'id,name\n31001,Bones & Peaches TV\n31002,"Cuisine & Vins, Édition Spéciale"\n'
SECTIONS = "id,name\n41001,Bones & Peaches TV|Home\n41002,Bones & Peaches TV|Drama|Thrillers\n"
SERIES = "id\tname\n51001\tThe Bone Collector's Kitchen\n51002\t\n"


def write_names(folder: Path, sites: str = SITES, sections: str = SECTIONS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.csv").write_bytes(codecs.BOM_UTF8 + sites.encode())
    (folder / "site_section.csv.gz").write_bytes(gzip.compress(sections.encode(), mtime=0))
    (folder / "series.csv").write_text(SERIES)  # tab-separated, one name empty
    (folder / "placement.csv").write_text("id,name\n610001,House - Promos\n")  # not a snapshot
    return folder


def rows(lake: Path, entity: str) -> list[tuple[Any, ...]]:
    table = read_snapshot(LocalStorage(lake), entity)
    assert table.schema.equals(DIMENSION_SCHEMAS[entity])
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def from_files(lake: Path, folder: Path | str, *extra: str) -> int:
    return cli.main(["dimensions", "--lake", str(lake), "--from-files", str(folder), *extra])


def test_a_good_folder_gives_the_three_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    seed_previous_snapshots(lake)

    assert from_files(lake, write_names(tmp_path / "names")) == 0

    assert rows(lake, "sites") == [
        (31001, "Bones & Peaches TV"),
        (31002, "Cuisine & Vins, Édition Spéciale"),
    ]
    assert rows(lake, "site_sections") == [
        (41001, "Bones & Peaches TV|Home", None),  # the hierarchy is the name, kept whole
        (41002, "Bones & Peaches TV|Drama|Thrillers", None),
    ]
    assert rows(lake, "series") == [(51001, "The Bone Collector's Kitchen"), (51002, None)]
    assert capsys.readouterr().out.strip() == "sites=2 site_sections=2 series=2"


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (SECTIONS + "41x03,Broken\n", "site_section.csv.gz line 4, column id: '41x03' is not"),
        (SECTIONS + "41004,a,b\n", "site_section.csv.gz line 4: 3 fields, the header has 2"),
        ("id,title\n41001,Home\n", "site_section.csv.gz line 1: no column 'name'"),
        (SECTIONS + "41001,Elsewhere\n", "line 4: id 41001 again, with 'Elsewhere' where line 2"),
        (SECTIONS + '41005,"unterminated\n', "site_section.csv.gz line 4: not valid CSV"),
    ],
)
def test_a_bad_file_leaves_every_previous_snapshot_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sections: str, message: str
) -> None:
    lake = tmp_path / "lake"
    before = seed_previous_snapshots(lake)

    assert from_files(lake, write_names(tmp_path / "names", sections=sections)) == 1

    assert current_bytes(lake) == before
    err = capsys.readouterr().err
    assert message in err and "No dimension snapshot was changed" in err
    assert "Traceback" not in err


def test_a_missing_or_ambiguous_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake, names = tmp_path / "lake", write_names(tmp_path / "names")
    before = seed_previous_snapshots(lake)
    (names / "series.csv").unlink()
    assert from_files(lake, names) == 1
    assert "no series file series.csv (or series.csv.gz)" in capsys.readouterr().err

    (names / "series_1.csv").write_text(SERIES)
    (names / "series_2.csv").write_text(SERIES)
    config = tmp_path / "files.json"
    config.write_text(json.dumps({"series": {"file": "series_*.csv"}}))
    assert from_files(lake, names, "--files-config", str(config)) == 1
    assert "2 files match series_*.csv for series" in capsys.readouterr().err
    assert current_bytes(lake) == before


def test_file_patterns_and_column_names_are_configurable(tmp_path: Path) -> None:
    lake, names = tmp_path / "lake", write_names(tmp_path / "names")
    (names / "site_section.csv.gz").unlink()
    (names / "sections_20210218.csv").write_text(
        "Section ID;Section Name;Site ID\n41001;Home;31001\n41002;Drama;\n"
    )
    config = tmp_path / "files.json"
    config.write_text(
        json.dumps(
            {
                "site_sections": {
                    "file": "sections_*.csv",
                    "id_column": "section id",
                    "name_column": "Section Name",
                    "parent_column": "site id",
                }
            }
        )
    )

    assert from_files(lake, names, "--files-config", str(config)) == 0

    assert rows(lake, "site_sections") == [(41001, "Home", 31001), (41002, "Drama", None)]


def test_a_bad_files_config_is_a_user_error(tmp_path: Path, capsys) -> None:
    config = tmp_path / "files.json"
    config.write_text(json.dumps({"videos": {}}))
    assert from_files(tmp_path / "lake", tmp_path, "--files-config", str(config)) == 1
    assert "unknown entity videos" in capsys.readouterr().err
    assert cli.main(["dimensions", "--files-config", str(config)]) == 1


def test_companion_files_can_come_from_s3(tmp_path: Path, aws: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="delivery")
    for path in write_names(tmp_path / "names").iterdir():
        s3.put_object(Bucket="delivery", Key=f"2021/02/18/{path.name}", Body=path.read_bytes())

    assert from_files(tmp_path / "lake", "s3://delivery/2021/02/18") == 0
    assert rows(tmp_path / "lake", "sites")[0][1] == "Bones & Peaches TV"
