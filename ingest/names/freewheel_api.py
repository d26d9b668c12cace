"""A small client for FreeWheel's Publisher API: token, rate limits, retries, pagination.

Defaults (each one configurable, see `b2p dimensions --help`):

- base URL `https://api.freewheel.tv`;
- token: `POST {base}/auth/token` with the form fields grant_type=password, username, password;
  the answer is JSON with `access_token` and `expires_in` (seconds; FreeWheel tokens live 7 days).
  The token is reused until shortly before it expires and renewed once when a resource answers 401;
- resources: `GET {base}/<path>?page=N&per_page=500` with `Authorization: Bearer <token>`,
  pages numbered from 1; the items are a top-level JSON list or the list under `items_key`
  (a dotted path); paging stops at the first empty page, or earlier when `total_key` (if
  configured) says every item has been read. A short page does not end the list: the API may cap
  the page size below per_page;
- client-side rate limits: 20 requests/s for resources, 3 requests/s for the token endpoint;
- retries with exponential backoff and jitter on 429 (honouring `Retry-After`), 5xx, timeouts and
  connection errors: at most 6 attempts per request, per-request timeout 30 s, and a total
  deadline (600 s) for everything the client does;
- redirects are refused, so the bearer token is never sent to another host.

Errors are `FreeWheelApiError` (a `UserError`) with messages that say what to do. They are raised
outside `except` blocks, so no urllib exception is chained onto them, and they never contain the
password, the token or a request body.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ingest.errors import UserError
from ingest.names.secrets import Credentials, Secret

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.freewheel.tv"
DEFAULT_TOKEN_PATH = "auth/token"
DEFAULT_TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600.0
MAX_ERROR_DETAIL_CHARS = 200


class FreeWheelApiError(UserError):
    """The API could not give what was asked; the message says why and what to do."""


class BadCredentialsError(FreeWheelApiError):
    pass


class PermissionDeniedError(FreeWheelApiError):
    pass


class DeadlineExceededError(FreeWheelApiError):
    pass


class ApiUnavailableError(FreeWheelApiError):
    pass


class UnexpectedResponseError(FreeWheelApiError):
    pass


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class RateLimiter:
    """At most `per_second` acquisitions per second: consecutive ones are 1/per_second apart.

    A minimum interval (a token bucket of size 1) rather than a bigger bucket, because the API
    counts requests per second and a burst at a second boundary would be answered with 429.
    """

    def __init__(self, per_second: float, clock: Clock) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._interval = 1.0 / per_second
        self._clock = clock
        self._next_allowed: float | None = None
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock.monotonic()
            if self._next_allowed is not None and now < self._next_allowed:
                self._clock.sleep(self._next_allowed - now)
                now = max(self._clock.monotonic(), self._next_allowed)
            self._next_allowed = now + self._interval


@dataclass(frozen=True)
class ClientSettings:
    base_url: str = DEFAULT_BASE_URL
    token_path: str = DEFAULT_TOKEN_PATH
    timeout_seconds: float = 30.0
    deadline_seconds: float = 600.0
    max_attempts: int = 6
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    api_requests_per_second: float = 20.0
    auth_requests_per_second: float = 3.0
    # renew this long before the token's announced expiry, so it does not expire in flight
    token_renewal_margin_seconds: float = 300.0


@dataclass(frozen=True)
class PagedResource:
    """Where a paginated list lives and how to page through it."""

    name: str
    path: str
    items_key: str | None = None  # dotted path to the list; None: top-level list or `name`
    total_key: str | None = None  # dotted path to the total item count, if the API gives one
    page_param: str = "page"
    per_page_param: str = "per_page"
    per_page: int = 500
    first_page: int = 1
    max_pages: int = 10_000
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would forward the Authorization header to wherever a redirect points
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def build_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_RefuseRedirects())


class FreeWheelClient:
    """One client per run: it owns the token, both rate limiters and the run's deadline."""

    def __init__(
        self,
        settings: ClientSettings,
        credentials: Credentials,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._opener = opener or build_opener()
        self._api_limiter = RateLimiter(settings.api_requests_per_second, self._clock)
        self._auth_limiter = RateLimiter(settings.auth_requests_per_second, self._clock)
        self._deadline = self._clock.monotonic() + settings.deadline_seconds
        self._token: Secret | None = None
        self._token_renew_at = 0.0

    # -- public -----------------------------------------------------------------------------

    def fetch_all(self, resource: PagedResource) -> list[dict[str, Any]]:
        """Every item of a paginated resource, in the order the API gives them."""
        items: list[dict[str, Any]] = []
        previous: list[dict[str, Any]] | None = None
        page = resource.first_page
        for _ in range(resource.max_pages):
            params = {
                **resource.query,
                resource.page_param: str(page),
                resource.per_page_param: str(resource.per_page),
            }
            payload = self.get_json(resource.path, params)
            batch = extract_items(payload, resource)
            items.extend(batch)
            log.debug(
                "fetched page",
                extra={"fields": {"resource": resource.name, "page": page, "items": len(batch)}},
            )
            # only an empty page ends the list: the API may cap the page size below per_page,
            # so a short page says nothing about whether more follow
            if not batch:
                return items
            if batch == previous:
                raise self._ignores_page_param(resource, f"page {page} repeats page {page - 1}")
            previous = batch
            total = extract_total(payload, resource)
            if total is not None and len(items) >= total:
                return items
            page += 1
        raise self._ignores_page_param(
            resource, f"still non-empty pages after {resource.max_pages} pages"
        )

    @staticmethod
    def _ignores_page_param(resource: PagedResource, symptom: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(
            f"{resource.name}: {symptom}; the API may ignore the {resource.page_param!r} "
            "parameter: check page_param in --api-config"
        )

    def get_json(self, path: str, params: Mapping[str, str]) -> Any:
        """GET a resource with the bearer token; renews the token once if it is refused."""
        url = self._url(path, params)
        what = f"GET {self._display_url(path)}"
        response = self._send_authorized(url, what)
        if response.status == 401:
            log.info("token refused, renewing it", extra={"fields": {"request": what}})
            self._token = None
            response = self._send_authorized(url, what)
            if response.status == 401:
                raise BadCredentialsError(
                    f"{what} answered HTTP 401 even with a freshly issued token"
                    f"{self._detail(response)}; check that user {self._credentials.username!r} "
                    "may use the Publisher API"
                )
        self._raise_for_status(response, what)
        return self._parse_json(response, what)

    # -- token ------------------------------------------------------------------------------

    def _valid_token(self) -> Secret:
        if self._token is None or self._clock.monotonic() >= self._token_renew_at:
            self._authenticate()
        assert self._token is not None
        return self._token

    def _authenticate(self) -> None:
        url = self._url(self._settings.token_path, {})
        what = f"POST {self._display_url(self._settings.token_path)}"
        form = urllib.parse.urlencode(
            {
                "grant_type": "password",
                "username": self._credentials.username,
                "password": self._credentials.password.reveal(),
            }
        ).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        request = urllib.request.Request(url, data=form, headers=headers, method="POST")
        response = self._send(request, self._auth_limiter, what)
        if response.status == 401 or (
            response.status == 400 and self._error_code(response) == "invalid_grant"
        ):
            raise BadCredentialsError(
                f"bad FreeWheel credentials: {what} answered HTTP {response.status} for user "
                f"{self._credentials.username!r}{self._detail(response)}; check "
                "FREEWHEEL_USERNAME/FREEWHEEL_PASSWORD or the secret given with --secret-id"
            )
        self._raise_for_status(response, what)
        payload = self._parse_json(response, what)
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise UnexpectedResponseError(f"{what} answered without an access_token")
        lifetime = _positive_float(payload.get("expires_in"), DEFAULT_TOKEN_LIFETIME_SECONDS)
        margin = min(self._settings.token_renewal_margin_seconds, lifetime / 2)
        self._token = Secret(token)
        self._token_renew_at = self._clock.monotonic() + lifetime - margin
        log.info("FreeWheel token issued", extra={"fields": {"expires_in": lifetime}})

    # -- transport ----------------------------------------------------------------------------

    def _send_authorized(self, url: str, what: str) -> _Response:
        token = self._valid_token()
        headers = {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}
        request = urllib.request.Request(url, headers=headers, method="GET")
        return self._send(request, self._api_limiter, what)

    def _send(self, request: urllib.request.Request, limiter: RateLimiter, what: str) -> _Response:
        """Send, retrying on 429, 5xx, timeouts and connection errors; returns the last answer."""
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            self._remaining(what)
            limiter.acquire()
            timeout = min(self._settings.timeout_seconds, self._remaining(what))
            response, failure = self._open(request, timeout)
            retry_after: float | None = None
            if response is not None:
                if response.status != 429 and response.status < 500:
                    return response
                failure = f"HTTP {response.status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == attempts:
                raise ApiUnavailableError(
                    f"{what} failed {attempts} times (last: {failure}); FreeWheel may be down or "
                    "throttling this account: try again later"
                )
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if delay >= self._remaining(what):
                raise DeadlineExceededError(
                    f"{what} failed ({failure}) and waiting {delay:.1f}s to retry would pass the "
                    f"deadline of {self._settings.deadline_seconds:g}s: try again later or raise "
                    "--deadline-seconds"
                )
            log.warning(
                "retrying FreeWheel request",
                extra={
                    "fields": {
                        "request": what,
                        "failure": failure,
                        "attempt": attempt,
                        "delay_seconds": round(delay, 3),
                    }
                },
            )
            self._clock.sleep(delay)
        raise AssertionError("unreachable")

    def _open(
        self, request: urllib.request.Request, timeout: float
    ) -> tuple[_Response | None, str | None]:
        """One HTTP exchange: a response (any status), or None and why it failed in transit."""
        try:
            with self._opener.open(request, timeout=timeout) as answer:
                return _Response(answer.status, dict(answer.headers.items()), answer.read()), None
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                exc.close()
            return _Response(exc.code, dict(exc.headers.items()), body), None
        except TimeoutError:
            return None, f"no answer within {timeout:.1f}s"
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                return None, f"no answer within {timeout:.1f}s"
            return None, f"connection failed ({type(reason).__name__})"
        except (OSError, http.client.HTTPException) as exc:
            return None, f"connection failed ({type(exc).__name__})"

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random."""
        ceiling = min(
            self._settings.backoff_max_seconds,
            self._settings.backoff_base_seconds * 2 ** (attempt - 1),
        )
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _remaining(self, what: str) -> float:
        remaining = self._deadline - self._clock.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError(
                f"{what}: the deadline of {self._settings.deadline_seconds:g}s has passed; try "
                "again later or raise --deadline-seconds"
            )
        return remaining

    # -- helpers ------------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, str]) -> str:
        url = self._settings.base_url.rstrip("/") + "/" + path.lstrip("/")
        return url + ("?" + urllib.parse.urlencode(params) if params else "")

    def _display_url(self, path: str) -> str:
        return self._settings.base_url.rstrip("/") + "/" + path.lstrip("/")

    def _raise_for_status(self, response: _Response, what: str) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        detail = self._detail(response)
        if status == 403:
            raise PermissionDeniedError(
                f"missing permission: {what} answered HTTP 403{detail}; ask your FreeWheel "
                f"administrator to let user {self._credentials.username!r} read this resource"
            )
        if status == 404:
            raise UnexpectedResponseError(
                f"{what} answered HTTP 404{detail}: check the resource path (--api-config) "
                "and --base-url"
            )
        if 300 <= status < 400:
            location = response.headers.get("Location", "?")
            raise UnexpectedResponseError(
                f"{what} redirected (HTTP {status}) to {location}; redirects are not followed "
                "so the token stays with FreeWheel: set --base-url to the final address"
            )
        raise UnexpectedResponseError(f"{what} answered HTTP {status}{detail}")

    def _parse_json(self, response: _Response, what: str) -> Any:
        try:
            return json.loads(response.body)
        except ValueError:
            pass
        content_type = response.headers.get("Content-Type", "unknown")
        raise UnexpectedResponseError(
            f"{what} did not answer JSON (Content-Type {content_type}); check --base-url"
        )

    def _error_code(self, response: _Response) -> str | None:
        try:
            payload = json.loads(response.body)
        except ValueError:
            return None
        code = payload.get("error") if isinstance(payload, dict) else None
        return code if isinstance(code, str) else None

    def _detail(self, response: _Response) -> str:
        """The server's own short error text, with anything secret blanked out."""
        try:
            payload = json.loads(response.body)
        except ValueError:
            return ""
        if not isinstance(payload, dict):
            return ""
        parts = [
            str(payload[key])
            for key in ("error", "error_description", "message")
            if isinstance(payload.get(key), str | int)
        ]
        if not parts:
            return ""
        text = redact(": ".join(parts), self._secret_values())[:MAX_ERROR_DETAIL_CHARS]
        return f" ({text})"

    def _secret_values(self) -> list[str]:
        values = [self._credentials.password.reveal()]
        if self._token is not None:
            values.append(self._token.reveal())
        return values


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number (fractions accepted) or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


def lookup(payload: Any, dotted: str) -> Any:
    """payload['a']['b'] for 'a.b'; None when a step is missing."""
    current = payload
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def extract_items(payload: Any, resource: PagedResource) -> list[dict[str, Any]]:
    """The list of items in one page: a top-level list, or the list under items_key/name."""
    if isinstance(payload, list):
        items: Any = payload
    else:
        key = resource.items_key or resource.name
        items = lookup(payload, key)
        if items is None:
            keys = (
                ", ".join(sorted(payload)) if isinstance(payload, dict) else type(payload).__name__
            )
            raise UnexpectedResponseError(
                f"{resource.name}: the answer has no list under {key!r} (it has: {keys}); "
                "set items_key in --api-config"
            )
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponseError(
            f"{resource.name}: expected a list of JSON objects, got {type(items).__name__}; "
            "set items_key in --api-config"
        )
    return items


def extract_total(payload: Any, resource: PagedResource) -> int | None:
    if resource.total_key is None:
        return None
    total = lookup(payload, resource.total_key)
    if isinstance(total, bool):
        return None
    if isinstance(total, int):
        return total
    if isinstance(total, str) and total.isdigit():
        return int(total)
    return None


def _positive_float(value: Any, default: float) -> float:
    if isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
