"""A fake FreeWheel Publisher API: a real HTTP server on 127.0.0.1, in a thread.

It implements the token endpoint (password grant) and paginated JSON resources, records every
request, and can be scripted to misbehave: `server.script(key, *faults)` queues faults that the
next requests matching `key` get instead of a normal answer ("auth" or (resource, page)).

    with FakeFreeWheelApi(USER, PASSWORD, {"sites": [...], ...}) as api:
        api.script(("sites", 2), Status(429, {"Retry-After": "1"}), Status(500))
        api.script(("series", 1), Delay(1.0))     # slower than the client's timeout
        api.script(("sites", 3), ExpireTokens())  # tokens issued so far now answer 401
        ... api.base_url ...
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FaultKey = str | tuple[str, int]


@dataclass(frozen=True)
class Status:
    """Answer with this status (and headers) instead of the normal answer."""

    code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Delay:
    """Wait this long, then give the normal answer (a client with a shorter timeout gives up)."""

    seconds: float


@dataclass(frozen=True)
class ExpireTokens:
    """Every token issued so far stops working; this request gets the 401 an expired one gets."""


Fault = Status | Delay | ExpireTokens


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    status: int
    at: float  # time.monotonic() when the request arrived


class FakeFreeWheelApi:
    def __init__(
        self,
        username: str,
        password: str,
        data: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        envelope: Callable[[str, list[Any], int, int], Any] | None = None,
        token_path: str = "/auth/token",
        resource_prefix: str = "/services/v4/",
        expires_in: int = 7 * 24 * 3600,
        max_per_page: int = 1000,
        forbidden: Sequence[str] = (),
    ) -> None:
        self.username = username
        self.password = password
        self.data = {name: list(items) for name, items in data.items()}
        self.envelope = envelope or (lambda name, items, page, total: {name: items, "page": page})
        self.token_path = token_path
        self.resource_prefix = resource_prefix
        self.expires_in = expires_in
        self.max_per_page = max_per_page
        self.forbidden = set(forbidden)
        self.requests: list[Recorded] = []
        self.issued_tokens: list[str] = []
        self._valid_tokens: set[str] = set()
        self._faults: dict[FaultKey, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------

    def script(self, key: FaultKey, *faults: Fault) -> None:
        with self._lock:
            self._faults.setdefault(key, deque()).extend(faults)

    def _next_fault(self, key: FaultKey) -> Fault | None:
        with self._lock:
            queue = self._faults.get(key)
            return queue.popleft() if queue else None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests_to(self, kind: str) -> list[Recorded]:
        """Requests to 'auth' or to one resource name."""
        return [r for r in self.requests if self._kind(r.path) == kind]

    def start(self) -> FakeFreeWheelApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                api._handle(self, "POST")

            def do_GET(self) -> None:
                api._handle(self, "GET")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeFreeWheelApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------

    def _kind(self, path: str) -> str:
        if path == self.token_path:
            return "auth"
        if path.startswith(self.resource_prefix):
            return path[len(self.resource_prefix) :]
        return "unknown"

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        arrived = time.monotonic()
        parsed = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        kind = self._kind(parsed.path)
        if kind == "auth":
            status, headers, payload = self._answer_auth(method, body)
        elif kind in self.data:
            status, headers, payload = self._answer_resource(handler, method, kind, query)
        else:
            status, headers, payload = 404, {}, {"error": "not_found"}
        with self._lock:
            self.requests.append(Recorded(method, parsed.path, query, status, arrived))
        self._write(handler, status, headers, payload)

    def _apply_fault(self, key: FaultKey) -> tuple[int, dict[str, str], Any] | None:
        fault = self._next_fault(key)
        if isinstance(fault, Delay):
            time.sleep(fault.seconds)
            return None
        if isinstance(fault, Status):
            body = fault.body if fault.body is not None else {"error": f"injected {fault.code}"}
            return fault.code, dict(fault.headers), body
        if isinstance(fault, ExpireTokens):
            with self._lock:
                self._valid_tokens.clear()
            return self._expired()
        return None

    def _answer_auth(self, method: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        injected = self._apply_fault("auth")
        if injected is not None:
            return injected
        if method != "POST":
            return 405, {}, {"error": "method_not_allowed"}
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("grant_type") != "password":
            return 400, {}, {"error": "unsupported_grant_type"}
        if form.get("username") != self.username or form.get("password") != self.password:
            return 401, {}, {"error": "invalid_grant", "error_description": "bad credentials"}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.issued_tokens.append(token)
            self._valid_tokens.add(token)
        return (
            200,
            {},
            {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in},
        )

    def _answer_resource(
        self, handler: BaseHTTPRequestHandler, method: str, name: str, query: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        page = int(query.get("page", "1"))
        injected = self._apply_fault((name, page))
        if injected is not None:
            return injected
        if method != "GET":
            return 405, {}, {"error": "method_not_allowed"}
        authorization = handler.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        with self._lock:
            valid = authorization.startswith("Bearer ") and token in self._valid_tokens
        if not valid:
            return self._expired()
        if name in self.forbidden:
            return 403, {}, {"error": "forbidden", "message": f"no permission to read {name}"}
        per_page = min(int(query.get("per_page", "50")), self.max_per_page)
        items = self.data[name]
        chunk = items[(page - 1) * per_page : page * per_page]
        return 200, {}, self.envelope(name, chunk, page, len(items))

    def _expired(self) -> tuple[int, dict[str, str], Any]:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return 401, headers, {"error": "invalid_token", "error_description": "token expired"}

    def _write(
        self, handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], payload: Any
    ) -> None:
        body = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up: that is the point of a Delay


def sample_catalog() -> dict[str, list[dict[str, Any]]]:
    """1,234 sites (3 pages of 500, then an empty one), 1,000 site sections (2 full pages, then
    an empty one) and 7 series, in an order that is not sorted by id, with fields the snapshots
    do not keep."""
    sites = [
        {"id": 10_000 + (i * 7919) % 1234, "name": f"Site {(i * 7919) % 1234}", "status": "ACTIVE"}
        for i in range(1234)
    ]
    sections = [
        {"id": 50_000 + i, "name": f"Section {i}", "site_id": 10_000 + i % 1234, "tags": ["x"]}
        for i in reversed(range(1000))
    ]
    series = [{"id": 900 + i, "name": f"Série {i} – l'été"} for i in (3, 1, 6, 0, 5, 2, 4)]
    series[2]["name"] = None  # an unnamed series is kept with a null name
    return {"sites": sites, "site_sections": sections, "series": series}
