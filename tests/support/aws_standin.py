"""The AWS stand-in: one HTTP endpoint on 127.0.0.1 for every AWS API the pipeline calls.

    boto3 / Trino's AWS SDK ──► stand-in ──► moto (S3, Glue, SQS, Athena workgroups, …)
                                   │
                                   ├─► Athena's query API, executed on Trino (athena_engine)
                                   ├─► records every call: who (access key → principal), what
                                   │   (service, operation), the IAM authorizations it needs
                                   └─► authorizes them against the principal's role policy from
                                       infra/bones2peaches.yaml, and refuses (AccessDenied) what
                                       the role does not allow, as AWS would

moto runs inside the stand-in's process (its WSGI application), so there is no second HTTP hop.
Principals are told apart by their access key id: each component (the planner, the worker, the
dbt task, Trino acting for the dbt task) signs with its own. Keys that are not registered (test
set-up, assertions) are recorded as "admin" and never refused.

moto lacks Glue's column-statistics operations, which Trino's Glue client calls when it writes a
table; the stand-in answers them itself (nothing is stored) and records them as engine-internal,
since Athena does not make those calls.

Run it with `running_aws_standin()`; `StandIn` is the client of its control API (/_b2p/…).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.support.aws_requests import ACCOUNT, Encryption, ParsedCall, parse
from tests.support.iam import Decision, Policy
from tests.support.moto import free_port
from tests.support.processes import die_with_parent, stop, wait_until_up

ADMIN = "admin"
INTERNAL_KEY = "b2p-standin-internal"
COLUMN_STATISTICS = {
    "GetColumnStatisticsForTable": {"ColumnStatisticsList": [], "Errors": []},
    "GetColumnStatisticsForPartition": {"ColumnStatisticsList": [], "Errors": []},
    "UpdateColumnStatisticsForTable": {"Errors": []},
    "UpdateColumnStatisticsForPartition": {"Errors": []},
    "DeleteColumnStatisticsForTable": {},
    "DeleteColumnStatisticsForPartition": {},
}


@dataclass
class Principal:
    name: str
    policy: Policy | None
    enforce: bool


@dataclass
class Fault:
    """The next `count` calls of service:operation (whose body contains `match`) fail."""

    service: str
    operation: str
    count: int
    code: str = "ThrottlingException"
    status: int = 400
    match: str = ""
    agent: str = ""  # a substring of the caller's User-Agent (dbt-athena's names itself)


class StandInApp:
    def __init__(self, port: int) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.principals: dict[str, Principal] = {}
        self.encryption = Encryption()
        self.calls: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.athena = None
        self.lock = threading.Lock()

    # ---- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_b2p/"):
            return self._control(environ, start_response)
        body = _read_body(environ)
        headers = _headers(environ)
        call = parse(
            environ["REQUEST_METHOD"],
            path,
            environ.get("QUERY_STRING", ""),
            headers,
            body,
            encryption=self.encryption,
            workgroup_of_query=self._workgroup_of_query,
        )
        principal = self.principals.get(call.access_key or "")
        decision = None
        if principal is not None and principal.policy is not None:
            decision = principal.policy.evaluate_all([a.request for a in call.authorizations])
        engine_internal = call.service == "glue" and call.operation in COLUMN_STATISTICS
        fault = self._fault(call, body, headers.get("user-agent", ""))
        if fault is not None:
            status, response_headers, payload = _error(
                call, fault.status, fault.code, "Rate exceeded"
            )
        elif (
            decision is not None
            and not decision.allowed
            and principal.enforce
            and not engine_internal
        ):
            status, response_headers, payload = _access_denied(call, principal.name)
        elif engine_internal:
            status, response_headers, payload = _json(200, COLUMN_STATISTICS[call.operation])
        elif (
            call.service == "athena"
            and self.athena is not None
            and self.athena.serves(call.operation)
        ):
            status, response_headers, payload = self._athena(call)
        else:
            fast = _glue_partitions(call, headers) if call.operation == "GetPartitions" else None
            status, response_headers, payload = fast or self._moto(environ, body)
        if call.access_key != INTERNAL_KEY:
            self._record(call, principal, decision, status, engine_internal, fault is not None)
        start_response(status, response_headers)
        return [payload]

    def _moto(self, environ: dict[str, Any], body: bytes) -> tuple[str, list, bytes]:
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.moto(environ, capture)
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        if environ["REQUEST_METHOD"] == "HEAD":  # the length of what a GET would return
            return captured["status"], captured["headers"], payload
        headers = [
            (k, v)
            for k, v in captured["headers"]
            if k.lower() not in ("content-length", "transfer-encoding")
        ]
        headers.append(("Content-Length", str(len(payload))))
        return captured["status"], headers, payload

    def _athena(self, call: ParsedCall) -> tuple[str, list, bytes]:
        from tests.support.athena_engine import AthenaClientError

        try:
            return _json(
                200, self.athena.handle(call.operation, call.params, call.access_key or "")
            )
        except AthenaClientError as error:
            return _json(400, {"__type": error.code, "Message": error.message}, error.code)

    def _workgroup_of_query(self, query_id: str) -> str | None:
        return self.athena.workgroup_of(query_id) if self.athena else None

    def _fault(self, call: ParsedCall, body: bytes, agent: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.count > 0
                    and fault.service == call.service
                    and fault.operation == call.operation
                    and fault.match.encode() in body
                    and fault.agent in agent
                ):
                    fault.count -= 1
                    return fault
        return None

    def _record(self, call, principal, decision: Decision | None, status, engine_internal, fault):
        entry = {
            "principal": principal.name if principal else ADMIN,
            "service": call.service,
            "operation": call.operation,
            "status": int(status.split()[0]),
            "engine_internal": engine_internal,
            "injected_fault": fault,
            "allowed": None if decision is None else decision.allowed,
            "statements": [] if decision is None else list(decision.statements),
            "authorizations": [
                {
                    "action": a.request.action,
                    "resource": a.request.resource,
                    "context": dict(a.request.context),
                    "implied": a.implied,
                }
                for a in call.authorizations
            ],
            "params": _short_params(call),
            "time": time.time(),
        }
        with self.lock:
            self.calls.append(entry)

    # ---- control API

    def _control(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        body = _read_body(environ)
        request = json.loads(body) if body else {}
        query = dict(
            p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p
        )
        result: Any = {"ok": True}
        if path == "/_b2p/health":
            pass
        elif path == "/_b2p/principals":
            for key, spec in request.items():
                policy = (
                    Policy.of(spec["statements"]) if spec.get("statements") is not None else None
                )
                self.principals[key] = Principal(spec["name"], policy, bool(spec.get("enforce")))
        elif path == "/_b2p/encryption":
            self.encryption = Encryption(request.get("buckets", {}), request.get("queues", {}))
        elif path == "/_b2p/calls":
            since = int(query.get("since", 0))
            with self.lock:
                result = {"calls": self.calls[since:], "next": len(self.calls)}
        elif path == "/_b2p/faults":
            with self.lock:
                self.faults.extend(Fault(**f) for f in request.get("faults", []))
        elif path == "/_b2p/athena/trino":
            from tests.support.athena_engine import AthenaEngine
            from tests.support.trino import TrinoServer

            trino = TrinoServer("127.0.0.1", int(request["port"]), request.get("version", ""), ())
            self.athena = AthenaEngine(
                self.url,
                trino,
                request["catalogs"],
                principal_of=lambda key: (
                    self.principals[key].name if key in self.principals else ADMIN
                ),
                dml_timeout_s=float(request.get("dml_timeout_s", 1800)),
            )
        elif path == "/_b2p/athena/queries":
            result = {
                "queries": self.athena.queries(int(query.get("since", 0))) if self.athena else []
            }
        elif path == "/_b2p/athena/hold":
            self.athena.hold(request["match"], request["name"])
        elif path == "/_b2p/athena/holds":
            result = {"holds": self.athena.holds_state()}
        elif path == "/_b2p/athena/release":
            self.athena.release(request["name"])
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"unknown control path"]
        status, headers, payload = _json(200, result)
        start_response(status, headers)
        return [payload]


# ---------------------------------------------------------------------------------- helpers


def _read_body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        return stream.read(int(length))
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" or environ.get(
        "wsgi.input_terminated"
    ):
        return stream.read()
    return b""


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _glue_partitions(call: ParsedCall, headers: dict[str, str]) -> tuple[str, list, bytes] | None:
    """GetPartitions from moto's Glue state, serialised with `json` rather than moto's
    shape-walking serializer: the same document (what the partitions were created with, plus
    DatabaseName, TableName, CreationTime in epoch seconds), 100x faster. A year of day partitions
    took moto over a second per call, and Trino and dbt-athena call it on every read and clean-up.
    None (moto answers, with its errors) when the table is not there."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.glue.models import glue_backends

    authorization = headers.get("authorization", "")
    scope = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/glue/", authorization)
    if call.service != "glue" or call.params.get("NextToken") or scope is None:
        return None
    backend = glue_backends[DEFAULT_ACCOUNT_ID][scope[1]]
    try:
        partitions = backend.get_partitions(
            call.params["DatabaseName"], call.params["TableName"], call.params.get("Expression")
        )
    except Exception:
        return None
    documents = []
    for partition in partitions:
        document = partition.as_dict()
        document["CreationTime"] = document["CreationTime"].timestamp()
        documents.append(document)
    return _json(200, {"Partitions": documents})


def _json(status: int, body: Any, error_type: str | None = None) -> tuple[str, list, bytes]:
    payload = json.dumps(body, default=str).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(payload))),
    ]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return f"{status} {'OK' if status == 200 else 'Bad Request'}", headers, payload


def _error(call: ParsedCall, status: int, code: str, message: str) -> tuple[str, list, bytes]:
    if call.service == "s3":
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>"
        ).encode()
        return (
            f"{status} Error",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))],
            payload,
        )
    if call.service == "sts":
        payload = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>"
        ).encode()
        return (
            f"{status} Error",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))],
            payload,
        )
    _, headers, payload = _json(status, {"__type": code, "Message": message}, code)
    return f"{status} Error", headers, payload


def _access_denied(call: ParsedCall, principal: str) -> tuple[str, list, bytes]:
    denied = call.authorizations[0].request if call.authorizations else None
    message = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{principal}/session is not authorized to "
        f"perform: {denied.action if denied else call.operation} on resource: "
        f"{denied.resource if denied else '*'} because no identity-based policy allows it"
    )
    code = "AccessDenied" if call.service in ("s3", "sts") else "AccessDeniedException"
    return _error(call, 403 if call.service == "s3" else 400, code, message)


def _short_params(call: ParsedCall) -> dict[str, Any]:
    keep = (
        "Bucket",
        "Key",
        "prefix",
        "Keys",
        "DatabaseName",
        "Name",
        "TableName",
        "WorkGroup",
        "QueueUrl",
    )
    params = {k: call.params[k] for k in keep if k in call.params}
    if call.operation == "StartQueryExecution":
        params["QueryString"] = call.params.get("QueryString", "")[:300]
    return params


# ---------------------------------------------------------------------------------- process


def serve(port: int) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    app = StandInApp(port)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


class StandIn:
    """Client of a running stand-in's control API, plus its endpoint for boto3 and Trino."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def _post(self, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.endpoint + path,
            data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.endpoint + path, timeout=60) as response:
            return json.load(response)

    def register(self, access_key: str, name: str, statements: list[dict] | None, enforce: bool):
        self._post(
            "/_b2p/principals",
            {access_key: {"name": name, "statements": statements, "enforce": enforce}},
        )

    def set_encryption(self, buckets: dict[str, str], queues: dict[str, str]) -> None:
        self._post("/_b2p/encryption", {"buckets": buckets, "queues": queues})

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return self._get(f"/_b2p/calls?since={since}")["calls"]

    def inject(self, *faults: dict[str, Any]) -> None:
        self._post("/_b2p/faults", {"faults": list(faults)})

    def attach_trino(self, port: int, catalogs: dict[str, str], version: str = "") -> None:
        self._post("/_b2p/athena/trino", {"port": port, "catalogs": catalogs, "version": version})

    def queries(self, since: int = 0) -> list[dict[str, Any]]:
        return self._get(f"/_b2p/athena/queries?since={since}")["queries"]

    def query_count(self) -> int:
        return len(self.queries())

    def hold(self, match: str, name: str) -> None:
        self._post("/_b2p/athena/hold", {"match": match, "name": name})

    def holds(self) -> list[dict[str, Any]]:
        return self._get("/_b2p/athena/holds")["holds"]

    def release(self, name: str) -> None:
        self._post("/_b2p/athena/release", {"name": name})


@contextlib.contextmanager
def running_aws_standin(log_path: str | None = None) -> Iterator[StandIn]:
    port = free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.aws_standin", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        preexec_fn=die_with_parent,
    )
    standin = StandIn(f"http://127.0.0.1:{port}")
    try:
        wait_until_up(
            lambda: standin._get("/_b2p/health") is not None, process, "the AWS stand-in", 60
        )
        yield standin
    finally:
        stop(process)
        if log_path:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
