"""The deployed stack, run for real offline: what the end-to-end Athena tests drive.

`AthenaStack` is the AWS stand-in with the template's resources, a Trino server that executes
Athena's queries, and helpers that act as each deployed component would:
- `ingest(files)`: put log files into FreeWheel's bucket, run the planner Lambda once and the
  worker Lambda until the queue is empty (their own roles, their stack environment);
- `dbt(...)`: the scheduled dbt task's command line, with the task definition's environment and
  the dbt task role, against the stand-in's Athena (dbt-athena unchanged);
- `read(model)`: a model read back through Trino, as an analyst would (a catalog of its own,
  never attributed to the dbt task).

Its host/port are those of any Trino: `stack.trino.host`, `stack.trino.port`, catalog
`lake_reader`, schema `stack.deployment.database` (reads the lake and the marts).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.aws_requests import ACCOUNT
from tests.support.aws_standin import StandIn, running_aws_standin
from tests.support.dbt import REPO
from tests.support.stack import ADMIN_KEY, ROLE_KEYS, Deployment
from tests.support.trino import TrinoCatalog, TrinoServer, running_trino

SOURCE_BUCKET = "freewheel-delivery"
SOURCE_PREFIX = "v4/"
READER_CATALOG = "lake_reader"
TRINO_TARGET_CATALOG = "trino_target"  # the dbt `trino` target's catalog (not an AWS role)
TRINO_TARGET_KEY = "b2p-trino-target"
ATHENA_CATALOG = "awsdatacatalog"
MARTS = (
    "capacity_preroll",
    "capacity_midroll",
    "capacity_overlay",
    "capacity_by_site",
    "capacity_by_site_section",
    "capacity_by_series",
)


def stack_parameters(projection_start: dt.date) -> dict[str, str]:
    return {
        "SourceBucketName": SOURCE_BUCKET,
        "SourcePrefix": SOURCE_PREFIX,
        "SourceBucketAccountId": ACCOUNT,
        "ImageTag": "test",
        "VpcId": "vpc-0b2p",
        "SubnetIds": "subnet-0b2p",
        "ProjectionStartDate": projection_start.isoformat(),
    }


@dataclass
class DbtRun:
    returncode: int
    stdout: str
    first_query: int  # index of its first Athena query in the stand-in's log
    last_query: int


@dataclass
class AthenaStack:
    standin: StandIn
    deployment: Deployment
    trino: TrinoServer
    work: Path

    # ---- ingest, as the deployed Lambdas

    def upload_logs(self, files: Iterable[tuple[Path, str]]) -> None:
        s3 = self.deployment.client("s3")
        for path, key in files:
            s3.upload_file(str(path), SOURCE_BUCKET, SOURCE_PREFIX + key)

    def upload_dimensions(self, folder: Path) -> None:
        s3 = self.deployment.client("s3")
        for path in sorted(folder.rglob("*.parquet")):
            key = "dimensions/" + path.relative_to(folder).as_posix()
            s3.upload_file(str(path), self.deployment.lake_bucket, key)

    def run_ingest(self) -> dict[str, Any]:
        planner = self._lambda("planner", "PlannerFunction", "PlannerRole")
        queue_arn = self.deployment.stack.get_att("IngestQueue", "Arn")
        worker = self._lambda("worker", "WorkerFunction", "WorkerRole", "--queue-arn", queue_arn)
        return {"planner": planner, "worker": worker}

    def _lambda(self, function: str, logical_id: str, role: str, *args: str) -> str:
        env = dict(os.environ, **self.deployment.lambda_env(logical_id, role))
        result = subprocess.run(
            [sys.executable, "-m", "tests.support.lambda_runner", function, *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{function} failed:\n{result.stderr[-4000:]}"
        return result.stdout.strip()

    # ---- dbt, as the deployed task

    def dbt_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        for key in list(env):
            if key.startswith(("AWS_", "B2P_ATHENA_", "DBT_")):
                env.pop(key)
        env.update(self.deployment.stack.container_environment("DbtTaskDefinition"))
        env.update(self.deployment.aws_env("DbtTaskRole"))
        env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
        # the stand-in answers at Trino's pace, where Athena's own queue time makes the
        # adapter's 1 s poll cheap: at 1 s a scheduled run here was mostly sleeping
        env.update(B2P_ATHENA_POLL_INTERVAL="0.1")
        env.update(extra)
        return env

    @property
    def profiles_dir(self) -> Path:
        """The folder of the deployed profile (profiles.yml.example, as the image has it)."""
        profiles = self.work / "profiles"
        if not (profiles / "profiles.yml").exists():
            profiles.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / "profiles.yml.example", profiles / "profiles.yml")
        return profiles

    def dbt_command(self, *args: str, name: str = "dbt") -> list[str]:
        profiles = self.profiles_dir
        dbt = Path(sys.executable).with_name("dbt")
        return [
            str(dbt),
            "--no-use-colors",
            *args,
            "--project-dir",
            str(REPO),
            "--profiles-dir",
            str(profiles),
            "--target-path",
            str(self.work / name / "target"),
            "--log-path",
            str(self.work / name / "logs"),
        ]

    def task_command(self, *extra: str) -> list[str]:
        """The deployed task as it runs: its entry point (infra/scheduled_dbt.sh, here through
        /bin/sh) with its container Command, then `extra` (e.g. a --select)."""
        container = self.deployment.stack.container("DbtTaskDefinition")
        entry_point = [str(part) for part in container["EntryPoint"]]
        assert entry_point == ["/bin/sh", "/app/scheduled_dbt.sh"], entry_point
        script = str(REPO / "infra" / "scheduled_dbt.sh")  # what the image puts at /app
        return ["/bin/sh", script, *(str(a) for a in container["Command"]), *extra]

    def task_env(self, name: str = "dbt", **extra: str) -> dict[str, str]:
        """dbt_env, with a `dbt` on PATH that adds this harness's project, profile and output
        folders to each call the task script makes."""
        shim = self.work / "task-bin" / "dbt"
        if not shim.exists():
            shim.parent.mkdir(parents=True, exist_ok=True)
            shim.write_text(
                "#!/bin/sh\n"
                f'exec {Path(sys.executable).with_name("dbt")} --no-use-colors "$@" '
                f"--project-dir {REPO} --profiles-dir {self.profiles_dir} "
                '--target-path "$B2P_E2E_RUN/target" --log-path "$B2P_E2E_RUN/logs"\n'
            )
            shim.chmod(0o755)
        env = self.dbt_env(**extra)
        env["PATH"] = f"{shim.parent}{os.pathsep}{env.get('PATH', '')}"
        env["B2P_E2E_RUN"] = str(self.work / name)
        return env

    def run_task(self, *extra: str, check: bool = True, name: str = "dbt") -> DbtRun:
        """One run of the scheduled dbt task (source freshness, then the build)."""
        return self._run(
            self.task_command(*extra), self.task_env(name), f"the dbt task {' '.join(extra)}", check
        )

    def dbt(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        name: str = "dbt",
    ) -> DbtRun:
        command = self.dbt_command(*args, name=name)
        return self._run(command, env or self.dbt_env(), f"dbt {' '.join(args)}", check)

    def _run(self, command: list[str], env: dict[str, str], what: str, check: bool) -> DbtRun:
        first = self.standin.query_count()
        result = subprocess.run(
            command, env=env, cwd=self.work, capture_output=True, text=True, check=False
        )
        run = DbtRun(result.returncode, result.stdout, first, self.standin.query_count())
        if check:
            assert result.returncode == 0, (
                f"{what} failed:\n{result.stdout[-8000:]}\n{result.stderr[-2000:]}"
            )
        return run

    def build(self, *extra: str, check: bool = True) -> DbtRun:
        return self.run_task(*extra, check=check)

    def queries(self, run: DbtRun | None = None) -> list[dict[str, Any]]:
        queries = self.standin.queries()
        return queries[run.first_query : run.last_query] if run else queries

    # ---- reading back, as an analyst through Trino

    def read(self, model: str, where: str = "") -> list[dict[str, Any]]:
        sql = f'select * from "{READER_CATALOG}"."{self.deployment.database}"."{model}" {where}'
        return self.trino.query(sql).dicts()

    def export(self, folder: Path, models: Iterable[str] = MARTS) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for model in models:
            rows = self.read(model)
            path = folder / f"{model}.csv"
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                columns = list(rows[0]) if rows else []
                writer.writerow(columns)
                for row in rows:
                    writer.writerow(["" if row[c] is None else row[c] for c in columns])
            written.append(path)
        return written


@contextmanager
def running_athena_stack(
    work: Path, projection_start: dt.date, overrides: dict[str, str] | None = None
) -> Iterator[AthenaStack]:
    """Stand-in + the stack's resources + Trino; everything stops on exit."""
    with ExitStack() as stack:
        standin = stack.enter_context(running_aws_standin(str(work / "aws-standin.log")))
        parameters = {**stack_parameters(projection_start), **(overrides or {})}
        deployment = Deployment.create(standin, parameters)
        catalogs = [
            TrinoCatalog(ATHENA_CATALOG, ROLE_KEYS["DbtTaskRole"]),
            TrinoCatalog(READER_CATALOG, ADMIN_KEY),
            TrinoCatalog(TRINO_TARGET_CATALOG, TRINO_TARGET_KEY),
        ]
        trino = stack.enter_context(running_trino(standin.endpoint, catalogs, log_dir=work))
        standin.attach_trino(trino.port, {ATHENA_CATALOG: ATHENA_CATALOG}, trino.version)
        yield AthenaStack(standin, deployment, trino, work)
