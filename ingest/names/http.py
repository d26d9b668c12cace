"""Sending one request to the Publisher API: kept-alive connections and retries from urllib3,
and by hand what urllib3's Retry cannot do.

urllib3's `Retry` decides what is retried and how often (429 and 5xx answers, connect and read
errors, at most `max_attempts`; redirects come back, never followed, so the bearer token goes
nowhere else). Kept here: the run's deadline (Retry counts attempts, not time), the client-side
rate limits (urllib3 has none), the waits between attempts (Retry-After or a backoff with
jitter, on a clock the tests can drive), and the proxy the environment names (urllib3 reads no
proxy variables; urllib.request, the client's HTTP before, did).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as NoAnswerError
from urllib3.util import Retry, Timeout

from ingest.names.api_errors import ApiUnavailableError, DeadlineExceededError, FreeWheelApiError

log = logging.getLogger(__name__)

# 429 and every 5xx: a gateway's 502 or 504 passes as surely as a 503
RETRIED_STATUSES = frozenset({429, *range(500, 600)})


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
class Response:
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


class Transport:
    """Sends one request at a time: urllib3 makes and counts the attempts; the waits between
    them, the rate limit and the run's deadline are kept here. One per client (per run)."""

    def __init__(
        self,
        pool: urllib3.PoolManager,
        clock: Clock,
        rng: random.Random,
        *,
        timeout_seconds: float,
        deadline_seconds: float,
        max_attempts: int,
        backoff_base_seconds: float,
        backoff_max_seconds: float,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._rng = rng
        self.timeout_seconds = timeout_seconds
        self.deadline_seconds = deadline_seconds
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self._deadline = clock.monotonic() + deadline_seconds

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        limiter: RateLimiter,
        what: str,
    ) -> Response:
        """One request: urllib3 makes the attempts and retries 429, 5xx, timeouts and connection
        errors; `_Attempts` paces them. Returns the first answer that is not retried."""
        attempts = _Attempts(self, limiter, what)
        attempts.start()
        retry = _Retry(
            total=self.max_attempts - 1,
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
            return Response(answer.status, answer.headers, answer.data)
        raise ApiUnavailableError(
            f"{what} failed {self.max_attempts} times (last: "
            f"{failure or f'HTTP {answer.status}'}); FreeWheel may be down or throttling this "
            "account: try again later"
        )

    def wait_to_retry(self, attempts: _Attempts, retry: Retry, response: Any) -> None:
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
        if delay >= self.remaining(attempts.what):
            raise DeadlineExceededError(
                f"{attempts.what} failed ({failure}) and waiting {delay:.1f}s to retry would "
                f"pass the deadline of {self.deadline_seconds:g}s: try again later or "
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
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def remaining(self, what: str) -> float:
        remaining = self._deadline - self._clock.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError(
                f"{what}: the deadline of {self.deadline_seconds:g}s has passed; try "
                "again later or raise --deadline-seconds"
            )
        return remaining


class _Attempts:
    """What the attempts of one request share, and what happens before each of them.

    Kept by hand because urllib3's Retry only counts attempts: it has no deadline, no rate
    limit, no clock to test with (it sleeps on the wall clock), no jitter on urllib3 1.26, a
    backoff of 0 before the first retry, and a Retry-After parser that raises on a value it
    cannot read (this client falls back to its backoff).
    """

    def __init__(self, transport: Transport, limiter: RateLimiter, what: str) -> None:
        self.transport = transport
        self.limiter = limiter
        self.what = what
        self.timeout_seconds = 0.0

    def start(self) -> None:
        """Before an attempt: the deadline must not have passed, the rate limit is waited out,
        and the attempt gets the per-request timeout, or what is left before the deadline."""
        self.transport.remaining(self.what)
        self.limiter.acquire()
        remaining = self.transport.remaining(self.what)
        self.timeout_seconds = min(self.transport.timeout_seconds, remaining)


class _StopRetrying(Exception):
    """Carries an error out of urllib3's retry loop, which has no other way to stop early."""

    def __init__(self, error: FreeWheelApiError) -> None:
        super().__init__(str(error))
        self.error = error


class _Retry(Retry):
    """urllib3's Retry deciding what is retried; the waits are `Transport.wait_to_retry`'s."""

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
            self.attempts.transport.wait_to_retry(self.attempts, self, response)
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
