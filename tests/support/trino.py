"""A real Trino server on 127.0.0.1 for tests: Athena engine v3's engine, offline.

Trino comes from Maven Central (the `trino-server-core` tarball and the `trino-hive` plugin zip),
is unpacked once into a cache outside the work tree (`$B2P_CACHE_DIR`, default
`~/.cache/bones2peaches`) and started per test session with a configuration of its own in a
temporary folder. Its Hive connector uses AWS Glue as its metastore and S3 as its file system,
both at an endpoint the caller gives (the AWS stand-in of `tests.support.aws_standin`, in front of
moto), each catalog with its own access key so that every AWS call Trino makes is attributed to
the principal it acts for.

    with running_trino(aws_endpoint, [TrinoCatalog("awsdatacatalog", "AKIA...")]) as trino:
        trino.query("select 1")            # a QueryResult: columns, rows, query id, statistics
        trino.host, trino.port             # for any Trino client (dbt-trino, Superset, the CLI)

Newer Trino releases are on Maven Central only as jars; 476 is the newest release published
there as a server tarball and plugin zip, so that is the version used (docs/athena.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.moto import free_port
from tests.support.processes import die_with_parent, stop, wait_until_up

TRINO_VERSION = "476"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
# Trino 476 needs Java 24 or later.
MIN_JAVA = 24
DEFAULT_JAVA_HOME = "/usr/lib/jvm/temurin-25-jdk-amd64"
STARTUP_TIMEOUT_S = 180
REGION = "us-east-1"


class TrinoUnavailable(RuntimeError):
    """Trino cannot be installed or started here; the message says what to do."""


def cache_root() -> Path:
    return Path(os.environ.get("B2P_CACHE_DIR") or Path.home() / ".cache" / "bones2peaches")


# ---------------------------------------------------------------------------------- install


def _artifact_url(artifact: str, version: str, extension: str) -> str:
    return f"{MAVEN_CENTRAL}/io/trino/{artifact}/{version}/{artifact}-{version}.{extension}"


def _download(url: str, target: Path, attempts: int = 3) -> None:
    """`url` to `target`, checked against Maven Central's .sha1; a refused or broken download
    is tried again (after 5 s, then 20 s) before it fails."""
    for attempt in range(attempts):
        try:
            return _download_once(url, target)
        except (OSError, TrinoUnavailable):
            if attempt == attempts - 1:
                raise
            time.sleep(5 * 4**attempt)


def _download_once(url: str, target: Path) -> None:
    if target.exists():
        return
    with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
        expected = response.read().decode().split()[0].strip()
    partial = target.with_name(target.name + f".{uuid.uuid4().hex}.part")
    digest = hashlib.sha1(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=600) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise TrinoUnavailable(f"{url}: sha1 {digest.hexdigest()} instead of {expected}")
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)


def install_trino(version: str = TRINO_VERSION) -> Path:
    """The Trino server folder (bin/, lib/, plugin/hive/), downloaded and unpacked on first use.

    Safe against concurrent installs (a lock file) and interrupted ones (the folder is renamed
    into place only when complete)."""
    root = cache_root() / "trino"
    home = root / f"trino-server-{version}"
    if (home / "plugin" / "hive").is_dir():
        return home
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    with (root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "plugin" / "hive").is_dir():
            return home
        server = downloads / f"trino-server-core-{version}.tar.gz"
        hive = downloads / f"trino-hive-{version}.zip"
        try:
            _download(_artifact_url("trino-server-core", version, "tar.gz"), server)
            _download(_artifact_url("trino-hive", version, "zip"), hive)
        except OSError as exc:
            raise TrinoUnavailable(
                f"cannot download Trino {version} from Maven Central ({exc}); it needs HTTPS "
                f"access to {MAVEN_CENTRAL}, or put the two files in {downloads}"
            ) from exc
        scratch = Path(tempfile.mkdtemp(dir=root, prefix=".unpack-"))
        try:
            with tarfile.open(server) as archive:
                archive.extractall(scratch, filter="tar")
            (unpacked,) = scratch.iterdir()
            with zipfile.ZipFile(hive) as archive:
                archive.extractall(scratch / "hive")
            (plugin,) = (scratch / "hive").iterdir()
            plugin.rename(unpacked / "plugin" / "hive")
            for launcher in (unpacked / "bin").rglob("launcher*"):
                launcher.chmod(0o755)
            unpacked.rename(home)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return home


def java_home() -> Path:
    """A JDK recent enough for Trino: $B2P_TRINO_JAVA_HOME, $JAVA_HOME, or Temurin 25."""
    candidates = [os.environ.get("B2P_TRINO_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    candidates.append(DEFAULT_JAVA_HOME)
    seen = []
    for candidate in filter(None, candidates):
        java = Path(candidate) / "bin" / "java"
        if not java.exists():
            continue
        version = subprocess.run(
            [str(java), "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            check=False,
        ).stderr
        major = next(
            (
                line.split("=", 1)[1].strip().split(".")[0]
                for line in version.splitlines()
                if line.strip().startswith("java.specification.version")
            ),
            "0",
        )
        seen.append(f"{candidate} (Java {major})")
        if int(major) >= MIN_JAVA:
            return Path(candidate)
    raise TrinoUnavailable(
        f"Trino {TRINO_VERSION} needs Java {MIN_JAVA} or later; found "
        f"{', '.join(seen) or 'no JDK'}. Set JAVA_HOME (or B2P_TRINO_JAVA_HOME) to one, e.g. "
        f"{DEFAULT_JAVA_HOME}"
    )


# ---------------------------------------------------------------------------------- configure


@dataclass(frozen=True)
class TrinoCatalog:
    """A Hive catalog on Glue + S3 at the AWS endpoint, acting with one access key.

    `warehouse` is where managed tables go (a schema without a location); `properties` adds or
    overrides connector properties."""

    name: str
    access_key: str
    secret_key: str = "testing"
    warehouse: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def render(self, aws_endpoint: str) -> str:
        settings = {
            "connector.name": "hive",
            "hive.metastore": "glue",
            "hive.metastore.glue.region": REGION,
            "hive.metastore.glue.endpoint-url": aws_endpoint,
            "hive.metastore.glue.aws-access-key": self.access_key,
            "hive.metastore.glue.aws-secret-key": self.secret_key,
            "fs.native-s3.enabled": "true",
            "s3.endpoint": aws_endpoint,
            "s3.region": REGION,
            "s3.path-style-access": "true",
            "s3.aws-access-key": self.access_key,
            "s3.aws-secret-key": self.secret_key,
            # Athena reads the stack's projected v4_events partitions the same way
            "hive.partition-projection-enabled": "true",
            # tables with an external_location, as dbt-athena creates them
            "hive.non-managed-table-writes-enabled": "true",
            "hive.non-managed-table-creates-enabled": "true",
            # Athena's limit: 100 partitions written per CTAS or INSERT (one writer per
            # statement, see config.properties, so the limit is per statement)
            "hive.max-partitions-per-writers": "100",
            # Athena keeps no statistics of the tables it writes
            "hive.collect-column-statistics-on-write": "false",
            "hive.table-statistics-enabled": "false",
            "hive.parquet.use-column-names": "true",
        }
        if self.warehouse:
            settings["hive.metastore.glue.default-warehouse-dir"] = self.warehouse
        settings.update(self.properties)
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def _write_config(etc: Path, data: Path, port: int, catalogs: Sequence[TrinoCatalog], aws: str):
    (etc / "catalog").mkdir(parents=True)
    heap = os.environ.get("B2P_TRINO_HEAP", "2G")
    (etc / "node.properties").write_text(
        "node.environment=b2p_test\n"
        f"node.id={uuid.uuid4()}\n"
        f"node.data-dir={data}\n"
        "node.bind-ip=127.0.0.1\n"
        "node.internal-address=127.0.0.1\n"
    )
    (etc / "jvm.config").write_text(
        "\n".join(
            [
                "-server",
                f"-Xmx{heap}",
                "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError",
                "-XX:TieredStopAtLevel=1",  # start fast: the queries are small
                "-Djdk.attach.allowAttachSelf=true",
            ]
        )
        + "\n"
    )
    (etc / "config.properties").write_text(
        "coordinator=true\n"
        "node-scheduler.include-coordinator=true\n"
        f"http-server.http.port={port}\n"
        f"discovery.uri=http://127.0.0.1:{port}\n"
        "query.max-memory=1GB\n"
        "query.max-memory-per-node=1GB\n"
        # one writer per statement, so hive.max-partitions-per-writers is a per-statement limit
        "task.min-writer-count=1\n"
        "task.max-writer-count=1\n"
        "task.scale-writers.enabled=false\n"
        "scale-writers=false\n"
        # two cores: keep the pools small
        "task.concurrency=2\n"
        "query.min-expire-age=60m\n"
    )
    (etc / "log.properties").write_text("io.trino=WARN\nio.airlift=WARN\n")
    for catalog in catalogs:
        (etc / "catalog" / f"{catalog.name}.properties").write_text(catalog.render(aws))


# ---------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    query_id: str
    stats: dict[str, Any]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class StatementStats:
    """What one statement read and wrote, from Trino's query info."""

    query_id: str
    physical_input_bytes: int
    written_bytes: int
    # table ("schema.table") -> the partitions Trino planned to read ("event_date=..." ids)
    partitions_read: dict[str, list[str]]


@dataclass(frozen=True)
class TrinoServer:
    """A running Trino: where it listens and how to ask it things."""

    host: str
    port: int
    version: str
    catalogs: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, catalog: str | None = None, schema: str | None = None, **kwargs: Any):
        import trino

        return trino.dbapi.connect(
            host=self.host,
            port=self.port,
            user=kwargs.pop("user", "b2p-test"),
            catalog=catalog or self.catalogs[0],
            schema=schema,
            **kwargs,
        )

    def query(
        self,
        sql: str,
        catalog: str | None = None,
        schema: str | None = None,
        session_properties: dict[str, str] | None = None,
    ) -> QueryResult:
        connection = self.connect(catalog, schema, session_properties=session_properties or {})
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            rows = [tuple(row) for row in cursor.fetchall()]
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, rows, cursor.query_id, dict(cursor.stats))
        finally:
            connection.close()

    def query_info(self, query_id: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/v1/query/{query_id}", headers={"X-Trino-User": "b2p-test"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def statement_stats(self, query_id: str) -> StatementStats:
        info = self.query_info(query_id)
        stats = info["queryStats"]
        partitions: dict[str, list[str]] = {}
        for source in info.get("inputs") or []:
            ids = (source.get("connectorInfo") or {}).get("partitionIds") or []
            key = f"{source['schema']}.{source['table']}"
            partitions.setdefault(key, []).extend(ids)
        return StatementStats(
            query_id=query_id,
            physical_input_bytes=_bytes(stats.get("physicalInputDataSize", "0B")),
            written_bytes=_bytes(stats.get("physicalWrittenDataSize", "0B")),
            partitions_read=partitions,
        )


_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15}


def _bytes(size: str | int) -> int:
    """Trino's DataSize text ('2233B', '1.5MB') in bytes."""
    if isinstance(size, int):
        return size
    for unit in sorted(_UNITS, key=len, reverse=True):
        if size.endswith(unit):
            return round(float(size[: -len(unit)]) * _UNITS[unit])
    return int(size)


@contextlib.contextmanager
def running_trino(
    aws_endpoint: str,
    catalogs: Sequence[TrinoCatalog],
    *,
    port: int | None = None,
    log_dir: Path | None = None,
) -> Iterator[TrinoServer]:
    """Install (once), configure and start Trino; stop it and remove its folders afterwards."""
    home = install_trino()
    java = java_home()
    port = port or free_port()
    work = Path(tempfile.mkdtemp(prefix="b2p-trino-", dir=log_dir))
    etc, data = work / "etc", work / "data"
    _write_config(etc, data, port, catalogs, aws_endpoint)
    log_path = (log_dir or work) / "trino-server.log"
    env = dict(os.environ, JAVA_HOME=str(java), PATH=f"{java / 'bin'}:{os.environ['PATH']}")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(home / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={data}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    server = TrinoServer("127.0.0.1", port, TRINO_VERSION, tuple(c.name for c in catalogs))
    try:
        _wait_until_started(server, process, log_path)
        yield server
    finally:
        stop(process, group=True, seconds=30)
        shutil.rmtree(work, ignore_errors=True)


def _wait_until_started(server: TrinoServer, process: subprocess.Popen, log: Path) -> None:
    def started() -> bool:
        with urllib.request.urlopen(f"{server.url}/v1/info", timeout=2) as response:
            return not json.load(response).get("starting", True)

    try:
        wait_until_up(started, process, "Trino", STARTUP_TIMEOUT_S, 0.5, lambda: f":\n{_tail(log)}")
    except RuntimeError as exc:
        raise TrinoUnavailable(str(exc)) from None


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
