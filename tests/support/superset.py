"""A Superset of the tests' own: provisioned by bi/provision.py in Superset's virtualenv
(.venv-bi, `make bi-install`) into a scratch home, served by gunicorn on a free 127.0.0.1 port,
stopped (by its process id) when the test session ends.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.dbt import REPO
from tests.support.moto import free_port
from tests.support.processes import die_with_parent, stop, wait_until_up

SUPERSET_PYTHON = Path(os.environ.get("B2P_SUPERSET_PYTHON", REPO / ".venv-bi" / "bin" / "python"))
PROVISION = REPO / "bi" / "provision.py"
ADMIN_USER = "admin"


@dataclass(frozen=True)
class Superset:
    url: str
    user: str
    password: str
    env: dict[str, str]

    def provision(self, **overrides: str) -> None:
        """Import a bundle (again): the default bundle, or e.g. B2P_BI_BUNDLE=<another>."""
        run_provision({**self.env, **overrides})

    def dashboard_url(self, slug: str = "ad-capacity") -> str:
        return f"{self.url}/superset/dashboard/{slug}/"


def run_provision(env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(SUPERSET_PYTHON), str(PROVISION), "provision"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(f"provision failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


@contextmanager
def running_superset(home: Path, warehouse_env: dict[str, str]) -> Iterator[Superset]:
    """Provision `home` over the warehouse `warehouse_env` describes (B2P_BI_ENGINE and its
    variables, see bi/provision.py), serve it, and stop it afterwards."""
    if not SUPERSET_PYTHON.exists():
        raise AssertionError(f"no Superset virtualenv at {SUPERSET_PYTHON}: run make bi-install")
    password = "test-" + os.urandom(8).hex()
    env = {
        **os.environ,
        **warehouse_env,
        "B2P_SUPERSET_HOME": str(home),
        "B2P_SUPERSET_ADMIN_USER": ADMIN_USER,
        "B2P_SUPERSET_ADMIN_PASSWORD": password,
    }
    run_provision(env)
    port = free_port()
    log = (home / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [str(SUPERSET_PYTHON), str(PROVISION), "serve", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200

    try:
        wait_until_up(healthy, process, "Superset", 180, interval=1)
        yield Superset(url=url, user=ADMIN_USER, password=password, env=env)
    finally:
        # gunicorn's master (the process we started) stops its workers on SIGTERM
        stop(process, group=True, seconds=30)
        log.close()
