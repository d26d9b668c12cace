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

How one request is sent and retried is `ingest.names.http` (urllib3, plus the deadline, rate
limits and waits urllib3 cannot do); how a page is read is `ingest.names.paging`. This module is
the API's own logic: the token (a 401 is not a failure to repeat but a new request), paging
through a resource, and what an answer means.

Errors are `FreeWheelApiError` (a `UserError`) with messages that say what to do. They carry no
urllib3 exception as cause or context, and they never contain the password, the token or a
request body.
"""

from __future__ import annotations

import json
import logging
import random
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

from ingest.names.api_errors import (
    BadCredentialsError,
    FreeWheelApiError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
from ingest.names.http import (
    Clock,
    RateLimiter,
    Response,
    SystemClock,
    Transport,
    build_pool_manager,
)
from ingest.names.paging import PagedResource, extract_items, extract_total
from ingest.names.secrets import Credentials, Secret

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.freewheel.tv"
DEFAULT_TOKEN_PATH = "auth/token"
DEFAULT_TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600.0
MAX_ERROR_DETAIL_CHARS = 200


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
        self._transport = Transport(
            pool or build_pool_manager(settings.base_url),
            self._clock,
            rng or random.Random(),
            timeout_seconds=settings.timeout_seconds,
            deadline_seconds=settings.deadline_seconds,
            max_attempts=settings.max_attempts,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_max_seconds=settings.backoff_max_seconds,
        )
        self._api_limiter = RateLimiter(settings.api_requests_per_second, self._clock)
        self._auth_limiter = RateLimiter(settings.auth_requests_per_second, self._clock)
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
        response = self._transport.send("POST", url, headers, form, self._auth_limiter, what)
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

    def _send_authorized(self, url: str, what: str) -> Response:
        token = self._valid_token()
        headers = {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}
        return self._transport.send("GET", url, headers, None, self._api_limiter, what)

    # -- helpers ------------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, str]) -> str:
        url = self._settings.base_url.rstrip("/") + "/" + path.lstrip("/")
        return url + ("?" + urllib.parse.urlencode(params) if params else "")

    def _display_url(self, path: str) -> str:
        return self._settings.base_url.rstrip("/") + "/" + path.lstrip("/")

    def _raise_for_status(self, response: Response, what: str) -> None:
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

    def _parse_json(self, response: Response, what: str) -> Any:
        try:
            return json.loads(response.body)
        except ValueError:
            pass
        content_type = response.headers.get("Content-Type", "unknown")
        raise UnexpectedResponseError(
            f"{what} did not answer JSON (Content-Type {content_type}); check --base-url"
        )

    def _error_code(self, response: Response) -> str | None:
        try:
            payload = json.loads(response.body)
        except ValueError:
            return None
        code = payload.get("error") if isinstance(payload, dict) else None
        return code if isinstance(code, str) else None

    def _detail(self, response: Response) -> str:
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


def _positive_float(value: Any, default: float) -> float:
    if isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
