"""Superset provisioned as code: `python bi/provision.py provision|serve`, run with .venv-bi's
Python (Superset's own virtualenv; this file imports nothing of the pipeline's).

provision: metadata database upgrade, roles, admin user, then the dashboard bundle (bi/bundle/,
Superset's export format) imported with the warehouse connection filled in, and each dataset's
columns read from the warehouse itself. Run it again at will: the import overwrites by UUID.
serve: gunicorn on 127.0.0.1.

The warehouse (B2P_BI_ENGINE):
  duckdb (default)  the local DuckDB file $B2P_DUCKDB_PATH, opened read-only, schema main
  trino             trino://$B2P_TRINO_USER@$B2P_TRINO_HOST:$B2P_TRINO_PORT/$B2P_TRINO_CATALOG,
                    schema $B2P_TRINO_SCHEMA (Athena's engine, e.g. the offline Athena harness)
  athena            awsathena+rest://athena.$B2P_ATHENA_REGION.amazonaws.com:443/$B2P_BI_SCHEMA
                    ?work_group=$B2P_ATHENA_WORKGROUP (PyAthena; AWS credentials from boto3's chain;
                    &endpoint_url=$B2P_ATHENA_ENDPOINT_URL when set)
or B2P_BI_DATABASE_URI and B2P_BI_SCHEMA for any other SQLAlchemy URI.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BI = Path(__file__).resolve().parent
BUNDLE = BI / "bundle"
DASHBOARD_SLUG = "ad-capacity"


@dataclass(frozen=True)
class Warehouse:
    uri: str
    schema: str
    engine_params: dict[str, Any] = field(default_factory=dict)

    def redacted(self) -> str:
        parts = urllib.parse.urlsplit(self.uri)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return self.uri


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"provision: set {name} (see bi/provision.py)")
    return value


def warehouse_from_env() -> Warehouse:
    if os.environ.get("B2P_BI_DATABASE_URI"):
        return Warehouse(os.environ["B2P_BI_DATABASE_URI"], required("B2P_BI_SCHEMA"))
    engine = os.environ.get("B2P_BI_ENGINE", "duckdb")
    if engine == "duckdb":
        path = Path(os.environ.get("B2P_DUCKDB_PATH", "warehouse.duckdb")).resolve()
        if not path.exists():
            sys.exit(f"provision: no warehouse at {path}: run `make demo` first")
        # read-only: dbt writes the same file; Superset's NullPool holds it only per query
        return Warehouse(f"duckdb:///{path}", "main", {"connect_args": {"read_only": True}})
    if engine == "trino":
        host, port = required("B2P_TRINO_HOST"), required("B2P_TRINO_PORT")
        user = os.environ.get("B2P_TRINO_USER", "superset")
        catalog = required("B2P_TRINO_CATALOG")
        return Warehouse(f"trino://{user}@{host}:{port}/{catalog}", required("B2P_TRINO_SCHEMA"))
    if engine == "athena":
        region, schema = required("B2P_ATHENA_REGION"), required("B2P_BI_SCHEMA")
        parameters = {"work_group": required("B2P_ATHENA_WORKGROUP")}
        # an Athena endpoint of its own (a VPC interface endpoint; the offline stand-in in tests)
        if os.environ.get("B2P_ATHENA_ENDPOINT_URL"):
            parameters["endpoint_url"] = os.environ["B2P_ATHENA_ENDPOINT_URL"]
        query = urllib.parse.urlencode(parameters)
        uri = f"awsathena+rest://athena.{region}.amazonaws.com:443/{schema}?{query}"
        return Warehouse(uri, schema)
    sys.exit(f"provision: B2P_BI_ENGINE must be duckdb, trino or athena, not {engine!r}")


def bundle_dir() -> Path:
    """bi/bundle, or B2P_BI_BUNDLE (another bundle in the same format, e.g. a test's variant)."""
    return Path(os.environ.get("B2P_BI_BUNDLE", BUNDLE)).resolve()


def bundle_contents(warehouse: Warehouse, bundle: Path | None = None) -> dict[str, str]:
    """The bundle's files (path -> YAML text) with the warehouse filled in."""
    bundle = bundle or bundle_dir()
    contents = {}
    for path in sorted(bundle.rglob("*.yaml")):
        key = path.relative_to(bundle).as_posix()
        document = yaml.safe_load(path.read_text())
        if key.startswith("databases/"):
            document["sqlalchemy_uri"] = warehouse.uri
            document["extra"]["engine_params"] = warehouse.engine_params
        elif key.startswith("datasets/"):
            document["schema"] = warehouse.schema
        contents[key] = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return contents


def bundle_zip(contents: dict[str, str]) -> bytes:
    """The same as a ZIP, as Superset's export (and its import dialog) has it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, text in contents.items():
            archive.writestr(f"ad_capacity/{key}", text)
    return buffer.getvalue()


# ---- Superset


def home() -> Path:
    path = Path(os.environ.get("B2P_SUPERSET_HOME", ".bi")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def superset_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SUPERSET_CONFIG_PATH", str(BI / "superset_config.py"))
    env.setdefault("B2P_SUPERSET_HOME", str(home()))
    env.setdefault("FLASK_APP", "superset.app:create_app()")
    env.setdefault("SUPERSET_LOAD_EXAMPLES", "no")
    return env


def admin_credentials() -> tuple[str, str]:
    """B2P_SUPERSET_ADMIN_USER (default admin) and B2P_SUPERSET_ADMIN_PASSWORD; without the
    latter, a random password made once and kept in B2P_SUPERSET_HOME/admin_password."""
    user = os.environ.get("B2P_SUPERSET_ADMIN_USER", "admin")
    password = os.environ.get("B2P_SUPERSET_ADMIN_PASSWORD")
    if not password:
        path = home() / "admin_password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        password = path.read_text().strip()
    return user, password


def superset(*args: str) -> None:
    command = [str(Path(sys.executable).with_name("superset")), *args]
    result = subprocess.run(command, env=superset_env(), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(
            f"provision: superset {args[0]} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


def import_bundle(contents: dict[str, str], user: str, password: str) -> None:
    """In Superset's app context: the admin user (created, or its password set to the current
    one; done here, not with `superset fab create-admin`, so that the password never appears in
    a command line), then the import (overwrite) and every dataset's columns."""
    os.environ.update({k: v for k, v in superset_env().items() if k not in os.environ})
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db, security_manager
        from superset.commands.dashboard.importers.dispatcher import ImportDashboardsCommand
        from superset.connectors.sqla.models import SqlaTable
        from superset.utils.core import override_user

        admin = security_manager.find_user(username=user)
        if admin is None:
            admin = security_manager.add_user(
                user, "Ad", "Ops", f"{user}@localhost", security_manager.find_role("Admin"),
                password=password,
            )  # fmt: skip
            if not admin:
                sys.exit(f"provision: could not create the admin user {user!r}")
        else:
            security_manager.reset_password(admin.id, password)
        with override_user(admin):
            ImportDashboardsCommand(contents, overwrite=True).run()
            datasets = {
                yaml.safe_load(text)["uuid"]
                for key, text in contents.items()
                if key.startswith("datasets/")
            }
            for dataset in db.session.query(SqlaTable).all():
                if str(dataset.uuid) in datasets:
                    dataset.fetch_metadata()
            db.session.commit()


def provision() -> None:
    warehouse = warehouse_from_env()
    user, password = admin_credentials()
    superset("db", "upgrade")
    superset("init")  # roles and permissions
    import_bundle(bundle_contents(warehouse), user, password)
    print(f"provision: Ad capacity dashboard imported over {warehouse.redacted()}")


def serve(port: int) -> None:
    url = f"http://127.0.0.1:{port}/superset/dashboard/{DASHBOARD_SLUG}/"
    user, _ = admin_credentials()
    password_hint = (
        "$B2P_SUPERSET_ADMIN_PASSWORD"
        if os.environ.get("B2P_SUPERSET_ADMIN_PASSWORD")
        else str(home() / "admin_password")
    )
    print(f"Superset: {url}\n  log in as {user}, password in {password_hint}\n  Ctrl-C stops it")
    sys.stdout.flush()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [
        gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
        "--timeout", "120", "--log-level", "warning", "superset.app:create_app()",
    ]  # fmt: skip
    os.execve(gunicorn, command, superset_env())


def main(argv: list[str]) -> None:
    if argv[:1] == ["provision"]:
        provision()
    elif argv[:1] == ["serve"]:
        serve(int(argv[1]) if len(argv) > 1 else int(os.environ.get("B2P_SUPERSET_PORT", "8088")))
    elif argv[:1] == ["bundle"]:
        # the ZIP to import by hand (Dashboards > Import) into another Superset
        sys.stdout.buffer.write(bundle_zip(bundle_contents(warehouse_from_env())))
    else:
        sys.exit("usage: provision.py provision | serve [PORT] | bundle > ad_capacity.zip")


if __name__ == "__main__":
    main(sys.argv[1:])
