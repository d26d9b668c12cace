"""An HTTP proxy on 127.0.0.1 that forwards to an upstream (moto_server) and injects faults.

Point boto3 at `proxy.endpoint` (endpoint_url or AWS_ENDPOINT_URL) and a chosen fraction of
requests fail the way S3 fails in production:

- "500" / "503": an S3-style XML error (InternalError / SlowDown); the request never
  reaches upstream. botocore retries both.
- "drop": the connection is closed before anything is forwarded or answered.
- "drop_after": the request is applied upstream, then the connection is closed without an
  answer, so the client retries something that already happened (idempotency).
- "cut": the request is applied upstream and the response headers are sent, then only half
  of the body before the connection closes. When the body has under two bytes there is
  nothing to cut and it behaves like "drop_after".

Faults are chosen by a seeded RNG (`fault_rate`, `faults`), after an optional explicit
`schedule` (one entry per request: a fault name or None) has been used up. Separately,
`forbidden(method, path)` picks requests S3 refuses as a missing permission does: 403
AccessDenied, never forwarded (e.g. GET of one object, or every PUT to a read-only lake).
Everything else is forwarded unchanged: method, path, query, headers (minus hop-by-hop ones)
and body, and the response is streamed back in chunks.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import random
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

FAULTS = ("500", "503", "drop", "drop_after", "cut")
CHUNK = 64 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",  # the proxy answers 100-continue itself
    }
)
ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
}


def s3_error_body(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


class FaultyProxy:
    """A forwarding proxy with injected faults; use as a context manager."""

    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.0,
        faults: Iterable[str] = FAULTS,
        seed: int = 0,
        schedule: Sequence[str | None] = (),
        forbidden: Callable[[str, str], bool] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.faults = tuple(faults)
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.fault_rate = fault_rate
        self.forbidden = forbidden
        self.refused = 0
        self._schedule = collections.deque(schedule)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests = 0
        self.injected: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, fault)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultyProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() would wait forever on a server never started
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def choose_fault(self, method: str, path: str) -> str | None:
        """The fault for the next request (thread-safe, reproducible for a given order)."""
        with self._lock:
            self.requests += 1
            if self._schedule:
                fault = self._schedule.popleft()
            elif self.faults and self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.faults)
            else:
                fault = None
            if fault is not None:
                self.injected[fault] += 1
            self.log.append((method, path, fault))
            return fault


def _handler_class(proxy: FaultyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as botocore expects
    proxy: FaultyProxy

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests read proxy.log instead

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _handle(self) -> None:
        body = self._read_request_body()
        if self.proxy.forbidden is not None and self.proxy.forbidden(self.command, self.path):
            self.proxy.refused += 1
            self._send_error(403, "AccessDenied", "Access Denied")
            return
        fault = self.proxy.choose_fault(self.command, self.path)
        if fault in ERRORS:
            self._send_error(*ERRORS[fault])
            return
        if fault == "drop":
            self._drop()
            return
        upstream = http.client.HTTPConnection(
            self.proxy.upstream_host, self.proxy.upstream_port, timeout=60
        )
        try:
            upstream.request(self.command, self.path, body=body, headers=self._forward_headers())
            response = upstream.getresponse()
            if fault == "drop_after":
                response.read()
                self._drop()
            else:
                self._relay(response, cut=fault == "cut")
        finally:
            upstream.close()

    def _read_request_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _read_chunked(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(pieces)
            pieces.append(self.rfile.read(size))
            self.rfile.readline()

    def _forward_headers(self) -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            headers.pop("Content-Length", None)
        return headers

    def _send_error(self, status: int, code: str, message: str) -> None:
        payload = s3_error_body(code, message)
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        # SHUT_RDWR makes the client see the connection end at once, with no response
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _relay(self, response: http.client.HTTPResponse, *, cut: bool) -> None:
        length_header = response.getheader("Content-Length")
        has_body = self.command != "HEAD" and response.status not in (204, 304)
        if cut and (not has_body or length_header is None or int(length_header) < 2):
            response.read()
            self._drop()
            return
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        chunked = has_body and length_header is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if not has_body:
            return
        limit = int(length_header) // 2 if cut and length_header is not None else None
        self._stream_body(response, chunked=chunked, limit=limit)
        if cut:
            self.wfile.flush()
            self._drop()

    def _stream_body(
        self, response: http.client.HTTPResponse, *, chunked: bool, limit: int | None
    ) -> None:
        sent = 0
        while limit is None or sent < limit:
            want = CHUNK if limit is None else min(CHUNK, limit - sent)
            data = response.read(want)
            if not data:
                break
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            sent += len(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
