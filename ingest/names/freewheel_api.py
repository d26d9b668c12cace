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
- redirects are refused, so the bearer token is never sent to another host;
- the proxy the environment names (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) is used, as urllib does.

HTTP is urllib3's: a pool of kept-alive connections, and `urllib3.util.Retry` deciding what is
retried and how often (429 and 5xx answers, connect and read errors, at most `max_attempts`).
What Retry cannot do stays here: the deadline, the rate limiters, the waits between attempts
(see `_Attempts`) and the token renewal (a 401 is not a failure to repeat but a new request).

Errors are `FreeWheelApiError` (a `UserError`) with messages that say what to do. They carry no
urllib3 exception as cause or context, and they never contain the password, the token or a
request body.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as NoAnswerError
from urllib3.util import Retry, Timeout

from ingest.errors import UserError
from ingest.names.secrets import Credentials, Secret

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.freewheel.tv"
DEFAULT_TOKEN_PATH = "auth/token"
DEFAULT_TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600.0
MAX_ERROR_DETAIL_CHARS = 200
# 429 and every 5xx: a gateway's 502 or 504 passes as surely as a 503
RETRIED_STATUSES = frozenset({429, *range(500, 600)})


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
    Hand-written: urllib3 has no rate limiting, and a library for ten lines is not worth it.
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
    headers: Mapping[str, str]  # urllib3's HTTPHeaderDict: names are case-insensitive
    body: bytes


def build_pool_manager(base_url: str) -> urllib3.PoolManager:
    """Kept-alive connections to the API, through the proxy the environment names for it.

    urllib3 reads no proxy variables itself; urllib.request did (the client's HTTP before), so
    a deployment behind a proxy keeps working: the same variables, the same NO_PROXY rules.
    """
    parts = urllib.parse.urlsplit(base_url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return urllib3.PoolManager()
    proxy_url = urllib3.util.parse_url(proxy if "://" in proxy else f"http://{proxy}")
    if proxy_url.scheme not in ("http", "https"):  # the URL itself may hold a password: not shown
        raise FreeWheelApiError(
            f"the proxy set for {parts.scheme}:// URLs is not an http(s):// URL: check "
            f"{parts.scheme.upper()}_PROXY"
        )
    auth = proxy_url.auth
    headers = urllib3.make_headers(proxy_basic_auth=auth) if auth else None
    return urllib3.ProxyManager(proxy_url._replace(auth=None).url, proxy_headers=headers)


class FreeWheelClient:
    """One client per run: it owns the token, both rate limiters and the run's deadline."""

    def __init__(
        self,
        settings: ClientSettings,
        credentials: Credentials,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # urllib3 would take a bare host name for http://, and send the token in clear
            raise FreeWheelApiError(
                f"the base URL {settings.base_url!r} is not an http(s):// URL: check --base-url"
            )
        self._settings = settings
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._pool = pool or build_pool_manager(settings.base_url)
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
        response = self._send("POST", url, headers, form, self._auth_limiter, what)
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
        return self._send("GET", url, headers, None, self._api_limiter, what)

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        limiter: RateLimiter,
        what: str,
    ) -> _Response:
        """One request: urllib3 makes the attempts and retries 429, 5xx, timeouts and connection
        errors; `_Attempts` paces them. Returns the first answer that is not retried."""
        attempts = _Attempts(self, limiter, what)
        attempts.start()
        retry = _Retry(
            total=self._settings.max_attempts - 1,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=None,  # the token POST too: a second token is harmless
            redirect=False,  # the 3xx itself comes back, so the bearer token goes nowhere else
            raise_on_status=False,  # the last answer comes back, and the message below says why
            attempts=attempts,
        )
        stopped: FreeWheelApiError | None = None
        failure: str | None = None
        try:
            answer = self._pool.urlopen(
                method,
                url,
                body=body,
                headers=dict(headers),
                retries=retry,
                redirect=False,
                timeout=_AttemptTimeout(attempts),
            )
        except _StopRetrying as stop:
            stopped = stop.error
        except MaxRetryError as exc:
            failure = describe_failure(exc.reason, attempts.timeout_seconds)
        except HTTPError as exc:  # what urllib3 does not retry (e.g. a malformed proxy URL)
            failure = describe_failure(exc, attempts.timeout_seconds)
            stopped = ApiUnavailableError(
                f"{what} failed ({failure}): check --base-url and any proxy setting"
            )
        if stopped is not None:
            # urllib3 waits (and so stops) inside its own `except` block: drop what it chained
            stopped.__context__ = stopped.__cause__ = None
            raise stopped
        if failure is None and answer.status not in RETRIED_STATUSES:
            return _Response(answer.status, answer.headers, answer.data)
        raise ApiUnavailableError(
            f"{what} failed {self._settings.max_attempts} times (last: "
            f"{failure or f'HTTP {answer.status}'}); FreeWheel may be down or throttling this "
            "account: try again later"
        )

    def _wait_to_retry(self, attempts: _Attempts, retry: Retry, response: Any) -> None:
        """Before each retry: the wait Retry-After asks for (or a backoff), unless it would pass
        the deadline; then the next attempt's start (`_Attempts.start`)."""
        last = retry.history[-1]
        if last.error is not None:
            failure = describe_failure(last.error, attempts.timeout_seconds)
        else:
            failure = f"HTTP {last.status}"
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        attempt = len(retry.history)
        delay = retry_after if retry_after is not None else self._backoff(attempt)
        if delay >= self._remaining(attempts.what):
            raise DeadlineExceededError(
                f"{attempts.what} failed ({failure}) and waiting {delay:.1f}s to retry would "
                f"pass the deadline of {self._settings.deadline_seconds:g}s: try again later or "
                "raise --deadline-seconds"
            )
        log.warning(
            "retrying FreeWheel request",
            extra={
                "fields": {
                    "request": attempts.what,
                    "failure": failure,
                    "attempt": attempt,
                    "delay_seconds": round(delay, 3),
                }
            },
        )
        self._clock.sleep(delay)
        attempts.start()

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random.

        Not Retry.get_backoff_time: it waits 0 s before the first retry (a 503 would be hit
        again at once), has no jitter on urllib3 1.26 and only an added one on 2.x.
        """
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


class _Attempts:
    """What the attempts of one request share, and what happens before each of them.

    Kept by hand because urllib3's Retry only counts attempts: it has no deadline, no rate
    limit, no clock to test with (it sleeps on the wall clock), no jitter on urllib3 1.26, a
    backoff of 0 before the first retry, and a Retry-After parser that raises on a value it
    cannot read (this client falls back to its backoff).
    """

    def __init__(self, client: FreeWheelClient, limiter: RateLimiter, what: str) -> None:
        self.client = client
        self.limiter = limiter
        self.what = what
        self.timeout_seconds = 0.0

    def start(self) -> None:
        """Before an attempt: the deadline must not have passed, the rate limit is waited out,
        and the attempt gets the per-request timeout, or what is left before the deadline."""
        self.client._remaining(self.what)
        self.limiter.acquire()
        remaining = self.client._remaining(self.what)
        self.timeout_seconds = min(self.client._settings.timeout_seconds, remaining)


class _StopRetrying(Exception):
    """Carries an error out of urllib3's retry loop, which has no other way to stop early."""

    def __init__(self, error: FreeWheelApiError) -> None:
        super().__init__(str(error))
        self.error = error


class _Retry(Retry):
    """urllib3's Retry deciding what is retried; the waits are the client's (`_Attempts`)."""

    # urllib3 also retries a 413 that has a Retry-After; this client never did
    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})

    def __init__(self, *args: Any, attempts: _Attempts | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts = attempts

    def new(self, **kw: Any) -> _Retry:  # every increment() copies the Retry through here
        kw.setdefault("attempts", self.attempts)
        return super().new(**kw)

    def sleep(self, response: Any = None) -> None:
        assert self.attempts is not None
        try:
            self.attempts.client._wait_to_retry(self.attempts, self, response)
        except FreeWheelApiError as error:
            raise _StopRetrying(error) from None


class _AttemptTimeout(Timeout):
    """urllib3 clones the request's Timeout for every attempt it makes: each clone gets that
    attempt's time limit (`_Attempts.start`), so the last attempts end at the deadline."""

    def __init__(self, attempts: _Attempts) -> None:
        super().__init__()
        self._attempts = attempts

    def clone(self) -> Timeout:
        seconds = self._attempts.timeout_seconds
        return Timeout(connect=seconds, read=seconds)


def describe_failure(error: BaseException | None, timeout_seconds: float) -> str:
    """Why an attempt got no answer, in words without the URL (it is named elsewhere)."""
    if error is None:
        return "connection failed"
    if isinstance(error, NoAnswerError) and not isinstance(error, NewConnectionError):
        return f"no answer within {timeout_seconds:.1f}s"
    cause = error
    if isinstance(error, ProtocolError) and len(error.args) > 1:
        cause = error.args[1]  # urllib3 wraps the socket's or http.client's error
    elif isinstance(error, NewConnectionError):
        cause = error.__cause__ or error.__context__ or error
    return f"connection failed ({type(cause).__name__})"


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number (fractions accepted) or an HTTP date; None if unusable.

    Not Retry.parse_retry_after: it raises on a value it cannot read (or a fraction), where
    this client falls back to its own backoff.
    """
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
