"""Amazon Athena's query API, served by the AWS stand-in and executed on a real Trino.

Athena engine v3 is built on Trino; what Athena adds around the engine is implemented here the
way AWS documents it, so that dbt-athena (or any boto3 client) runs unchanged:

- The API: StartQueryExecution, GetQueryExecution, GetQueryResults, StopQueryExecution,
  ListQueryExecutions, BatchGetQueryExecution (JSON over HTTP, as boto3 sends it). The query
  states QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED; a SELECT's results page with the
  header as their first row; DDL results are plain text.
- Workgroups (read from moto, where the stack's definition was created): a DISABLED or missing
  workgroup is refused; with EnforceWorkGroupConfiguration the workgroup's OutputLocation
  overrides the client's, and a CTAS writes its table under `<OutputLocation>tables/<query-id>/`
  (an explicit external_location is refused there); without it the client's location applies and
  a CTAS without external_location goes to `<location>Unsaved/<yyyy>/<mm>/<dd>/tables/<id>/`.
  BytesScannedCutoffPerQuery cancels a query that scans more (state CANCELLED, as documented).
  A CTAS's external_location must be empty.
- DDL (CREATE EXTERNAL TABLE, DROP TABLE, ALTER TABLE …) runs against Glue (`hive_ddl`), CTAS,
  INSERT, SELECT and views on Trino (CTAS's Athena table properties translated to Trino's Hive
  connector: format, partitioned_by, bucketing, write_compression as the session's codec).
  DELETE/UPDATE/MERGE on Hive tables are refused, as Athena refuses them.
- Everything Athena does in S3 and Glue on the caller's behalf is done with the caller's access
  key, through the stand-in, so it is recorded and authorized as the caller's (Trino's catalog
  for this API acts with the dbt task's key).
- Per query, the statistics Athena reports (DataScannedInBytes = Trino's physical input bytes)
  and, for measurements, the partitions Trino planned to read (`queries()`).
- Test controls: `hold(match)` keeps matching queries RUNNING until released (to kill a client at
  an exact point), and a DML timeout (Athena's is 30 minutes).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.hive_ddl import Catalog, DdlError, UnsupportedStatement
from tests.support.trino import TrinoServer

ENGINE_VERSION = "Athena engine version 3"
REGION = "us-east-1"
DML_TIMEOUT_S = 30 * 60
PAGE_ROWS = 1000
LONG_POLL_S = 5.0  # GetQueryExecution waits this long for a running query to end

_NODE_ID = re.compile(r'"node_id":\s*"([^"]+)"')
_CTAS = re.compile(
    r"create\s+table\s+(?P<name>[^\s(]+)\s+"
    r"(?:with\s*\((?P<props>(?:[^()']|'[^']*'|\([^()]*\))*)\)\s*)?"
    r"as\s+(?P<query>.*)",
    re.IGNORECASE | re.DOTALL,
)
_PROPERTY = re.compile(
    r"\s*(?P<key>\w+)\s*=\s*(?P<value>'(?:[^']|'')*'|ARRAY\s*\[[^\]]*\]|[\w.]+)\s*(?:,|$)",
    re.IGNORECASE,
)


class AthenaClientError(Exception):
    """An error the API call itself returns (HTTP 400), e.g. InvalidRequestException."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def strip_comments(sql: str) -> str:
    text = sql.strip()
    while True:
        if text.startswith("--"):
            text = text.split("\n", 1)[1].lstrip() if "\n" in text else ""
        elif text.startswith("/*"):
            text = text.split("*/", 1)[1].lstrip() if "*/" in text else ""
        else:
            return text


@dataclass(frozen=True)
class Kind:
    statement_type: str  # DDL, DML or UTILITY (Athena's StatementType)
    substatement: str  # e.g. SELECT, INSERT, CREATE_TABLE_AS_SELECT, CREATE_TABLE
    runs_on: str  # "glue" (Hive DDL), "trino", or "refuse"


def classify(sql: str) -> Kind:
    text = strip_comments(sql).lower()

    def starts(pattern: str) -> bool:
        return re.match(pattern, text, re.DOTALL) is not None

    if starts(r"create\s+external\s+table\b"):
        return Kind("DDL", "CREATE_TABLE", "glue")
    if starts(r"create\s+table\b"):
        if _CTAS.match(text):
            return Kind("DDL", "CREATE_TABLE_AS_SELECT", "trino")
        return Kind("DDL", "CREATE_TABLE", "glue")
    if starts(r"(drop|alter)\s+table\b") or starts(r"(create|drop)\s+(database|schema)\b"):
        return Kind("DDL", text.split()[0].upper() + "_" + text.split()[1].upper(), "glue")
    if starts(r"(msck|show|describe)\b"):
        return Kind("DDL", text.split()[0].upper(), "glue")
    if starts(r"create\s+(or\s+replace\s+)?view\b"):
        return Kind("DDL", "CREATE_VIEW", "trino")
    if starts(r"drop\s+view\b"):
        return Kind("DDL", "DROP_VIEW", "trino")
    if starts(r"insert\s+into\b"):
        return Kind("DML", "INSERT", "trino")
    if starts(r"(select|with|values|\()"):
        return Kind("DML", "SELECT", "trino")
    if starts(r"explain\b"):
        return Kind("UTILITY", "EXPLAIN", "trino")
    if starts(r"(delete|update|merge)\b"):
        return Kind("DML", text.split()[0].upper(), "refuse")
    return Kind("DML", "UNKNOWN", "refuse")


@dataclass
class Execution:
    id: str
    sql: str
    kind: Kind
    workgroup: str
    catalog: str
    database: str
    output: str  # the query's results folder (ends with /)
    principal: str
    access_key: str
    cutoff: int | None
    submitted: float = field(default_factory=time.time)
    completed: float | None = None
    state: str = "QUEUED"
    reason: str | None = None
    error_category: int | None = None
    scanned: int = 0
    written: int = 0
    partitions_read: dict[str, list[str]] = field(default_factory=dict)
    trino_query_id: str | None = None
    table_location: str | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    update_count: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def node_id(self) -> str | None:
        found = _NODE_ID.search(self.sql)
        return found[1] if found else None

    @property
    def result_file(self) -> str:
        suffix = "txt" if self.kind.runs_on == "glue" else "csv"
        return f"{self.output}{self.id}.{suffix}"

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sql": self.sql,
            "statement_type": self.kind.statement_type,
            "substatement": self.kind.substatement,
            "workgroup": self.workgroup,
            "principal": self.principal,
            "state": self.state,
            "reason": self.reason,
            "data_scanned_bytes": self.scanned,
            "written_bytes": self.written,
            "partitions_read": self.partitions_read,
            "trino_query_id": self.trino_query_id,
            "table_location": self.table_location,
            "node_id": self.node_id,
            "submitted": self.submitted,
            "completed": self.completed,
            "update_count": self.update_count,
        }


@dataclass
class Hold:
    match: str
    name: str
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    query_id: str | None = None


class AthenaEngine:
    """The query half of Athena's API; `self_url` is the stand-in, `trino` the engine."""

    def __init__(
        self,
        self_url: str,
        trino: TrinoServer,
        trino_catalogs: dict[str, str],
        principal_of: Callable[[str], str],
        dml_timeout_s: float = DML_TIMEOUT_S,
    ) -> None:
        self.self_url = self_url
        self.trino = trino
        self.trino_catalogs = {k.lower(): v for k, v in trino_catalogs.items()}
        self.principal_of = principal_of
        self.dml_timeout_s = dml_timeout_s
        self.executions: dict[str, Execution] = {}
        self.order: list[str] = []
        self.holds: list[Hold] = []
        self.lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    # ---- clients that act as the caller, through the stand-in

    def client(self, service: str, access_key: str) -> Any:
        key = (service, access_key)
        with self.lock:
            if key not in self._clients:
                self._clients[key] = boto3.client(
                    service,
                    endpoint_url=self.self_url,
                    region_name=REGION,
                    aws_access_key_id=access_key,
                    aws_secret_access_key="testing",
                    config=Config(retries={"max_attempts": 5, "mode": "standard"}),
                )
            return self._clients[key]

    # ---- the API

    def handle(self, operation: str, params: dict[str, Any], access_key: str) -> dict[str, Any]:
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise AthenaClientError("InvalidRequestException", f"{operation} is not served")
        return handler(params, access_key)

    def serves(self, operation: str) -> bool:
        return hasattr(self, f"_op_{operation}")

    def workgroup_of(self, query_id: str) -> str | None:
        execution = self.executions.get(query_id)
        return execution.workgroup if execution else None

    def _op_StartQueryExecution(self, params: dict[str, Any], access_key: str) -> dict[str, Any]:
        sql = params["QueryString"]
        workgroup_name = params.get("WorkGroup") or "primary"
        workgroup = self._workgroup(workgroup_name)
        configuration = workgroup.get("Configuration", {})
        enforced = bool(configuration.get("EnforceWorkGroupConfiguration"))
        group_output = configuration.get("ResultConfiguration", {}).get("OutputLocation")
        client_output = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        output = group_output if (enforced and group_output) else (client_output or group_output)
        if not output:
            raise AthenaClientError(
                "InvalidRequestException",
                "No output location provided. An output location is required either through "
                "the Workgroup result configuration setting or as an API input.",
            )
        context = params.get("QueryExecutionContext") or {}
        execution = Execution(
            id=str(uuid.uuid4()),
            sql=sql,
            kind=classify(sql),
            workgroup=workgroup_name,
            catalog=(context.get("Catalog") or "awsdatacatalog").lower(),
            database=(context.get("Database") or "default").lower(),
            output=output if output.endswith("/") else output + "/",
            principal=self.principal_of(access_key),
            access_key=access_key,
            cutoff=configuration.get("BytesScannedCutoffPerQuery"),
        )
        execution.enforced = enforced  # type: ignore[attr-defined]
        with self.lock:
            self.executions[execution.id] = execution
            self.order.append(execution.id)
        threading.Thread(target=self._run, args=(execution,), daemon=True).start()
        return {"QueryExecutionId": execution.id}

    def _op_GetQueryExecution(self, params: dict[str, Any], access_key: str) -> dict[str, Any]:
        execution = self._execution(params["QueryExecutionId"])
        execution.done.wait(LONG_POLL_S)
        return {"QueryExecution": self._describe(execution)}

    def _op_BatchGetQueryExecution(self, params, access_key):
        found, missing = [], []
        for query_id in params.get("QueryExecutionIds", []):
            execution = self.executions.get(query_id)
            if execution:
                found.append(self._describe(execution))
            else:
                missing.append({"QueryExecutionId": query_id, "ErrorCode": "NotFound"})
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def _op_ListQueryExecutions(self, params, access_key):
        workgroup = params.get("WorkGroup") or "primary"
        ids = [i for i in reversed(self.order) if self.executions[i].workgroup == workgroup]
        return {"QueryExecutionIds": ids[:50]}

    def _op_StopQueryExecution(self, params, access_key):
        execution = self._execution(params["QueryExecutionId"])
        if not execution.done.is_set():
            self._cancel_trino(execution)
            self._finish(execution, "CANCELLED", "Query was cancelled by the user")
        return {}

    def _op_GetQueryResults(self, params: dict[str, Any], access_key: str) -> dict[str, Any]:
        execution = self._execution(params["QueryExecutionId"])
        if execution.state != "SUCCEEDED":
            if execution.state in ("FAILED", "CANCELLED"):
                raise AthenaClientError(
                    "InvalidRequestException",
                    f"Query has {execution.state.lower()}: {execution.reason}",
                )
            raise AthenaClientError(
                "InvalidRequestException",
                f"Query has not yet finished. Current state: {execution.state}",
            )
        rows = execution.rows
        if execution.kind.substatement == "SELECT" and execution.columns:
            rows = [[name for name, _ in execution.columns], *rows]
        start = int(params.get("NextToken") or 0)
        size = min(int(params.get("MaxResults") or PAGE_ROWS), PAGE_ROWS)
        page = rows[start : start + size]
        result: dict[str, Any] = {
            "ResultSet": {
                "Rows": [{"Data": [_datum(v) for v in row]} for row in page],
                "ResultSetMetadata": {
                    "ColumnInfo": [_column_info(n, t) for n, t in execution.columns]
                },
            },
            "UpdateCount": execution.update_count or 0,
        }
        if start + size < len(rows):
            result["NextToken"] = str(start + size)
        return result

    # ---- test controls

    def hold(self, match: str, name: str) -> None:
        with self.lock:
            self.holds.append(Hold(match, name))

    def holds_state(self) -> list[dict[str, Any]]:
        return [
            {
                "name": h.name,
                "match": h.match,
                "reached": h.reached.is_set(),
                "query_id": h.query_id,
            }
            for h in self.holds
        ]

    def release(self, name: str) -> None:
        with self.lock:
            for hold in self.holds:
                if hold.name == name:
                    hold.released.set()
            self.holds = [h for h in self.holds if h.name != name]

    def queries(self, since: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            ids = self.order[since:]
        return [self.executions[i].record() for i in ids]

    # ---- execution

    def _workgroup(self, name: str) -> dict[str, Any]:
        athena = self.client("athena", "b2p-standin-internal")
        try:
            workgroup = athena.get_work_group(WorkGroup=name)["WorkGroup"]
        except ClientError as error:
            raise AthenaClientError(
                "InvalidRequestException", f"WorkGroup {name} is not found."
            ) from error
        if workgroup.get("State", "ENABLED") != "ENABLED":
            raise AthenaClientError("InvalidRequestException", f"WorkGroup {name} is disabled.")
        return workgroup

    def _execution(self, query_id: str) -> Execution:
        execution = self.executions.get(query_id)
        if execution is None:
            raise AthenaClientError(
                "InvalidRequestException", f"QueryExecution {query_id} was not found"
            )
        return execution

    def _run(self, execution: Execution) -> None:
        execution.state = "RUNNING"
        try:
            self._wait_for_holds(execution)
            if execution.done.is_set():
                return
            if execution.kind.runs_on == "glue":
                catalog = Catalog(self.client("glue", execution.access_key))
                catalog.run(strip_comments(execution.sql), execution.database)
            elif execution.kind.runs_on == "refuse":
                raise DdlError(
                    f"NOT_SUPPORTED: {execution.kind.substatement} is only supported for Iceberg "
                    "tables"
                    if execution.kind.substatement in ("DELETE", "UPDATE", "MERGE")
                    else f"the AWS stand-in does not run this statement: {execution.sql[:120]!r}"
                )
            else:
                self._run_on_trino(execution)
            if not execution.done.is_set():
                self._write_result_file(execution)
                self._finish(execution, "SUCCEEDED", None)
        except UnsupportedStatement as error:
            self._finish(execution, "FAILED", f"HARNESS_UNSUPPORTED: {error}", category=3)
        except DdlError as error:
            self._finish(execution, "FAILED", str(error), category=2)
        except Exception as error:  # the engine's failure, as Athena reports one
            self._finish(execution, "FAILED", _reason(error), category=2)

    def _wait_for_holds(self, execution: Execution) -> None:
        with self.lock:
            matching = [
                h for h in self.holds if h.match in execution.sql and not h.reached.is_set()
            ]
        for hold in matching:
            hold.query_id = execution.id
            hold.reached.set()
            hold.released.wait()

    def _finish(self, execution: Execution, state: str, reason: str | None, category: int = 2):
        with self.lock:
            if execution.done.is_set():
                return
            execution.state = state
            execution.reason = reason
            execution.error_category = category if state == "FAILED" else None
            execution.completed = time.time()
            execution.done.set()

    def _run_on_trino(self, execution: Execution) -> None:
        # Athena accepts one statement ending in ';' (dbt-athena sends some so); Trino does not
        sql = strip_comments(execution.sql).rstrip().removesuffix(";").rstrip()
        session: dict[str, str] = {}
        trino_catalog = self.trino_catalogs.get(execution.catalog, execution.catalog)
        if execution.kind.substatement == "CREATE_TABLE_AS_SELECT":
            sql, session = self._translate_ctas(execution, sql, trino_catalog)
        import trino

        connection = trino.dbapi.connect(
            host=self.trino.host,
            port=self.trino.port,
            user=f"athena-{execution.principal}",
            catalog=trino_catalog,
            schema=execution.database,
            session_properties=session,
        )
        watcher: threading.Thread | None = None
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            execution.trino_query_id = cursor.query_id
            watcher = threading.Thread(target=self._watch, args=(execution,), daemon=True)
            watcher.start()
            rows = cursor.fetchall()
            description = cursor.description or []
        except Exception:
            if execution.done.is_set():
                return  # cancelled by the watcher (cutoff, timeout) or StopQueryExecution
            raise
        finally:
            connection.close()
        self._collect_stats(execution)
        if execution.done.is_set():
            return
        if execution.kind.substatement in ("SELECT", "EXPLAIN"):
            execution.columns = [(d[0], d[1]) for d in description]
            execution.rows = [list(row) for row in rows]
        elif execution.kind.substatement in ("INSERT", "CREATE_TABLE_AS_SELECT"):
            execution.update_count = int(rows[0][0]) if rows and rows[0] else 0
        if execution.cutoff and execution.scanned > execution.cutoff:
            self._finish(execution, "CANCELLED", _cutoff_reason(execution))

    def _watch(self, execution: Execution) -> None:
        """Cancel the Trino query when it passes the workgroup's cutoff or the DML timeout."""
        deadline = execution.submitted + self.dml_timeout_s
        while not execution.done.is_set():
            try:
                stats = self.trino.query_info(execution.trino_query_id or "")["queryStats"]
            except OSError:
                return
            if stats.get("completed") or (stats.get("state") in ("FINISHED", "FAILED")):
                return
            from tests.support.trino import _bytes

            scanned = _bytes(stats.get("physicalInputDataSize", "0B"))
            if execution.cutoff and scanned > execution.cutoff:
                execution.scanned = scanned
                self._cancel_trino(execution)
                self._finish(execution, "CANCELLED", _cutoff_reason(execution))
                return
            if time.time() > deadline:
                self._cancel_trino(execution)
                self._finish(
                    execution,
                    "FAILED",
                    f"Query timeout: the query ran longer than {self.dml_timeout_s:.0f} s",
                )
                return
            time.sleep(0.2)

    def _cancel_trino(self, execution: Execution) -> None:
        if not execution.trino_query_id:
            return
        request = urllib.request.Request(
            f"{self.trino.url}/v1/query/{execution.trino_query_id}",
            method="DELETE",
            headers={"X-Trino-User": "athena"},
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10).read()

    def _collect_stats(self, execution: Execution) -> None:
        if not execution.trino_query_id:
            return
        for _ in range(20):
            stats = self.trino.statement_stats(execution.trino_query_id)
            info_state = self.trino.query_info(execution.trino_query_id).get("state")
            if info_state in ("FINISHED", "FAILED"):
                break
            time.sleep(0.1)
        execution.scanned = max(execution.scanned, stats.physical_input_bytes)
        execution.written = stats.written_bytes
        execution.partitions_read = stats.partitions_read

    def _translate_ctas(self, execution: Execution, sql: str, trino_catalog: str):
        match = _CTAS.match(sql)
        if match is None:  # classify() matched it; a mismatch is a harness bug
            raise UnsupportedStatement(f"cannot read the CTAS {sql[:120]!r}")
        properties = _properties(match["props"] or "")
        table_type = properties.pop("table_type", "'hive'").strip("'").lower()
        if table_type != "hive":
            raise UnsupportedStatement(f"table_type={table_type}: the harness runs Hive tables")
        properties.pop("is_external", None)
        location = properties.pop("external_location", None)
        if getattr(execution, "enforced", False):
            if location is not None:
                raise DdlError(
                    "INVALID_TABLE_PROPERTY: external_location cannot be set in workgroup "
                    f"{execution.workgroup}, which overrides the client-side query results location"
                )
            location = f"'{execution.output}tables/{execution.id}/'"
        elif location is None:
            day = dt.datetime.fromtimestamp(execution.submitted, dt.UTC)
            location = f"'{execution.output}Unsaved/{day:%Y/%m/%d}/tables/{execution.id}/'"
        execution.table_location = location.strip("'")
        self._require_empty(execution, execution.table_location)
        session: dict[str, str] = {}
        codec = properties.pop("write_compression", None)
        if codec:
            session[f"{trino_catalog}.compression_codec"] = codec.strip("'").upper()
        delimiter = properties.pop("field_delimiter", None)
        fmt = properties.pop("format", "'parquet'").strip("'").upper()
        trino_properties = {"external_location": location, "format": f"'{fmt}'"}
        if delimiter:
            trino_properties["textfile_field_separator"] = delimiter
        for key in ("partitioned_by", "bucketed_by", "bucket_count"):
            if key in properties:
                trino_properties[key] = properties.pop(key)
        if properties:
            raise UnsupportedStatement(f"CTAS properties {sorted(properties)}")
        rendered = ", ".join(f"{k} = {v}" for k, v in trino_properties.items())
        return f"CREATE TABLE {match['name']} WITH ({rendered}) AS {match['query']}", session

    def _require_empty(self, execution: Execution, location: str) -> None:
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        s3 = self.client("s3", execution.access_key)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        if listed.get("KeyCount", 0):
            raise DdlError(
                f"HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {location}"
            )

    def _write_result_file(self, execution: Execution) -> None:
        """Athena writes every query's results to its output location, as the caller."""
        text = io.StringIO()
        if execution.kind.substatement == "SELECT":
            writer = csv.writer(text, quoting=csv.QUOTE_ALL)
            writer.writerow([name for name, _ in execution.columns])
            for row in execution.rows:
                writer.writerow(["" if v is None else _text(v) for v in row])
        bucket, _, key = execution.result_file.removeprefix("s3://").partition("/")
        try:
            self.client("s3", execution.access_key).put_object(
                Bucket=bucket, Key=key, Body=text.getvalue().encode()
            )
        except ClientError as error:
            raise DdlError(
                f"Access denied when writing output to url: {execution.result_file} "
                f"({error.response['Error']['Code']})"
            ) from error

    def _describe(self, execution: Execution) -> dict[str, Any]:
        status: dict[str, Any] = {
            "State": execution.state,
            "SubmissionDateTime": execution.submitted,
        }
        if execution.completed:
            status["CompletionDateTime"] = execution.completed
        if execution.reason:
            status["StateChangeReason"] = execution.reason
        if execution.state == "FAILED":
            status["AthenaError"] = {
                "ErrorCategory": execution.error_category or 2,
                "ErrorType": 1002 if execution.error_category == 2 else 1000,
                "Retryable": False,
                "ErrorMessage": execution.reason or "",
            }
        elapsed = int(((execution.completed or time.time()) - execution.submitted) * 1000)
        return {
            "QueryExecutionId": execution.id,
            "Query": execution.sql,
            "StatementType": execution.kind.statement_type,
            "SubstatementType": execution.kind.substatement,
            "ResultConfiguration": {"OutputLocation": execution.result_file},
            "QueryExecutionContext": {"Catalog": execution.catalog, "Database": execution.database},
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": elapsed,
                "DataScannedInBytes": execution.scanned,
                "TotalExecutionTimeInMillis": elapsed,
                "QueryQueueTimeInMillis": 0,
                "ServiceProcessingTimeInMillis": 0,
            },
            "WorkGroup": execution.workgroup,
            "EngineVersion": {
                "SelectedEngineVersion": ENGINE_VERSION,
                "EffectiveEngineVersion": ENGINE_VERSION,
            },
        }


def _properties(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _PROPERTY.match(text, position)
        if not match:
            raise UnsupportedStatement(
                f"cannot read CTAS property list at {text[position:][:60]!r}"
            )
        found[match["key"].lower()] = match["value"]
        position = match.end()
    return found


def _cutoff_reason(execution: Execution) -> str:
    return (
        "Query cancelled! : Bytes scanned limit was exceeded: the query scanned "
        f"{execution.scanned} bytes, more than the workgroup {execution.workgroup}'s "
        f"BytesScannedCutoffPerQuery of {execution.cutoff} bytes"
    )


def _reason(error: Exception) -> str:
    name = getattr(error, "error_name", None)
    message = getattr(error, "message", None) or str(error)
    return f"{name}: {message}" if name else message


def _athena_type(trino_type: str) -> tuple[str, int, int]:
    base = trino_type.split("(")[0].strip().lower()
    numbers = [int(n) for n in re.findall(r"\d+", trino_type)] if "(" in trino_type else []
    if base == "decimal":
        return "decimal", numbers[0] if numbers else 38, numbers[1] if len(numbers) > 1 else 0
    if base == "varchar":
        return "varchar", numbers[0] if numbers else 2147483647, 0
    if base == "timestamp" and "with time zone" in trino_type:
        return "timestamp with time zone", 3, 0
    if base in ("array", "map", "row"):
        return base, 0, 0
    return base, {"bigint": 19, "integer": 10, "double": 17, "date": 0}.get(base, 0), 0


def _column_info(name: str, trino_type: str) -> dict[str, Any]:
    athena_type, precision, scale = _athena_type(str(trino_type))
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena_type,
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": athena_type == "varchar",
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | Decimal | int):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def _datum(value: Any) -> dict[str, str]:
    return {} if value is None else {"VarCharValue": _text(value)}
