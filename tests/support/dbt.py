"""Run the real dbt CLI on this project in isolation (own profiles, target and log folders)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DbtProject:
    """One dbt working area: a lake, a DuckDB warehouse and dbt's scratch folders under `work`."""

    work: Path
    lake: Path
    project: Path = REPO  # a copy (`project_copy`) when a test edits a seed

    @property
    def warehouse(self) -> Path:
        return self.work / "warehouse.duckdb"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            B2P_LAKE=str(self.lake),
            B2P_DUCKDB_PATH=str(self.warehouse),
            DBT_PROFILES_DIR=str(self.work / "profiles"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            DO_NOT_TRACK="1",
        )
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        profiles = self.work / "profiles"
        if not (profiles / "profiles.yml").exists():
            profiles.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / "profiles.yml.example", profiles / "profiles.yml")
        dbt = Path(sys.executable).with_name("dbt")
        command = [
            str(dbt),
            "--no-use-colors",
            *args,
            "--project-dir",
            str(self.project),
            "--target-path",
            str(self.work / "target"),
            "--log-path",
            str(self.work / "logs"),
        ]
        result = subprocess.run(
            command, env=self.env(), capture_output=True, text=True, cwd=self.work, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"dbt {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-6000:]}"
                f"\n{result.stderr[-3000:]}"
            )
        return result


PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "seeds")


def project_copy(target: Path, seeds: dict[str, str]) -> Path:
    """A copy of the dbt project with some seeds' CSV text replaced (name -> text)."""
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target / part)
    for name, text in seeds.items():
        (target / "seeds" / f"{name}.csv").write_text(text)
    return target
