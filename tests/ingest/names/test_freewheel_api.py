"""The FreeWheel API client against a real local HTTP server, with a virtual clock.

The clock only moves when the client sleeps (rate limit, backoff, Retry-After), so waits cost no
wall time and the timing assertions are exact rather than flaky.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from ingest.names.api_errors import (
    ApiUnavailableError,
    BadCredentialsError,
    DeadlineExceededError,
    FreeWheelApiError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
from ingest.names.freewheel_api import ClientSettings, FreeWheelClient
from ingest.names.http import RateLimiter, build_pool_manager, parse_retry_after
from ingest.names.paging import PagedResource
from ingest.names.secrets import Credentials, Secret
from ingest.structured_logging import configure_logging
from tests.support.fake_freewheel_api import (
    Delay,
    ExpireTokens,
    FakeFreeWheelApi,
    Status,
    sample_catalog,
)
from tests.support.moto import free_port

USER = "ops@example.com"
PASSWORD = "pw-Zq81!kV#not-in-logs"
SITES = PagedResource(name="sites", path="services/v4/sites")
SECTIONS = PagedResource(name="site_sections", path="services/v4/site_sections")
SERIES = PagedResource(name="series", path="services/v4/series")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingPool(urllib3.PoolManager):
    """A real pool manager that notes the virtual time each attempt leaves at.

    urllib3 makes the retries inside a connection pool's `urlopen` (it calls itself again), so
    that is where every attempt, first or retried, can be seen.
    """

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        sent: list[tuple[float, str]] = []
        self.sent = sent

        class Recording(urllib3.HTTPConnectionPool):
            def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                sent.append((clock.monotonic(), url))
                return super().urlopen(method, url, *args, **kwargs)

        self.pool_classes_by_scheme = {"http": Recording}


@pytest.fixture
def api() -> Iterator[FakeFreeWheelApi]:
    with FakeFreeWheelApi(USER, PASSWORD, sample_catalog()) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(
    api: FakeFreeWheelApi,
    clock: FakeClock,
    password: str = PASSWORD,
    pool: urllib3.PoolManager | None = None,
    **settings: Any,
) -> FreeWheelClient:
    values: dict[str, Any] = {"base_url": api.base_url, "timeout_seconds": 0.4}
    values.update(settings)
    return FreeWheelClient(
        ClientSettings(**values),
        Credentials(USER, Secret(password)),
        clock=clock,
        rng=random.Random(1),
        pool=pool,
    )


def test_reads_every_page_of_a_resource(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    items = make_client(api, clock).fetch_all(SITES)

    assert items == sample_catalog()["sites"]
    pages = [(r.query["page"], r.query["per_page"]) for r in api.requests_to("sites")]
    # 500 + 500 + 234, then the empty page that ends the list
    assert pages == [("1", "500"), ("2", "500"), ("3", "500"), ("4", "500")]


def test_a_full_last_page_is_followed_by_an_empty_one(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    items = make_client(api, clock).fetch_all(SECTIONS)

    assert len(items) == 1000
    assert [r.query["page"] for r in api.requests_to("site_sections")] == ["1", "2", "3"]


def test_a_page_size_capped_by_the_server_does_not_truncate_the_list(clock: FakeClock) -> None:
    # the API answers at most 100 items whatever per_page asks for: a short page is not the end
    with FakeFreeWheelApi(USER, PASSWORD, sample_catalog(), max_per_page=100) as server:
        items = make_client(server, clock).fetch_all(SITES)
        pages = [(r.query["page"], r.query["per_page"]) for r in server.requests_to("sites")]

    assert items == sample_catalog()["sites"]
    assert pages == [(str(page), "500") for page in range(1, 15)]  # 13 pages, then an empty one


def test_a_capped_page_size_with_total_key_stops_at_the_total(clock: FakeClock) -> None:
    data = {"sites": [{"id": i} for i in range(25)]}

    def envelope(name: str, items: list[Any], page: int, total: int) -> Any:
        return {"sites": items, "total": total}

    resource = PagedResource(name="sites", path="services/v4/sites", total_key="total")
    with FakeFreeWheelApi(USER, PASSWORD, data, envelope=envelope, max_per_page=10) as server:
        items = make_client(server, clock).fetch_all(resource)
        assert [r.query["page"] for r in server.requests_to("sites")] == ["1", "2", "3"]
    assert items == data["sites"]


def test_an_api_that_ignores_the_page_parameter_is_caught_at_once(clock: FakeClock) -> None:
    # every page is the same short first page: without a guard paging would never end
    with FakeFreeWheelApi(USER, PASSWORD, sample_catalog(), max_per_page=100) as server:
        resource = PagedResource(name="sites", path="services/v4/sites", page_param="p")
        with pytest.raises(UnexpectedResponseError, match=r"page 2 repeats page 1.*'p'"):
            make_client(server, clock).fetch_all(resource)
        assert len(server.requests_to("sites")) == 2


def test_total_key_stops_without_asking_for_an_empty_page(clock: FakeClock) -> None:
    data = {"sites": [{"id": i, "name": f"s{i}"} for i in range(10)]}

    def envelope(name: str, items: list[Any], page: int, total: int) -> Any:
        return {"data": {"rows": items}, "meta": {"total": total}}

    resource = PagedResource(
        name="sites",
        path="services/v4/sites",
        items_key="data.rows",
        total_key="meta.total",
        per_page=5,
    )
    with FakeFreeWheelApi(USER, PASSWORD, data, envelope=envelope) as server:
        items = make_client(server, clock).fetch_all(resource)
        assert [r.query["page"] for r in server.requests_to("sites")] == ["1", "2"]
    assert items == data["sites"]


def test_top_level_list_pages(clock: FakeClock) -> None:
    data = {"series": [{"id": i} for i in range(3)]}
    with FakeFreeWheelApi(USER, PASSWORD, data, envelope=lambda n, i, p, t: i) as server:
        items = make_client(server, clock).fetch_all(PagedResource("series", "services/v4/series"))
    assert items == data["series"]


def test_missing_list_key_is_a_configuration_error(clock: FakeClock) -> None:
    data = {"sites": [{"id": 1}]}
    with (
        FakeFreeWheelApi(USER, PASSWORD, data, envelope=lambda n, i, p, t: {"x": i}) as server,
        pytest.raises(UnexpectedResponseError, match=r"no list under 'sites' \(it has: x\)"),
    ):
        make_client(server, clock).fetch_all(SITES)


def test_one_token_serves_the_whole_run(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    client = make_client(api, clock)
    for resource in (SITES, SECTIONS, SERIES):
        client.fetch_all(resource)

    assert len(api.requests_to("auth")) == 1


def test_token_is_renewed_before_it_expires(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    client = make_client(api, clock, deadline_seconds=30 * 24 * 3600)
    client.fetch_all(SERIES)
    clock.now += 7 * 24 * 3600  # a week later the 7-day token is due for renewal
    client.fetch_all(SERIES)

    assert len(api.requests_to("auth")) == 2
    assert all(
        r.status == 200 for r in api.requests_to("series")
    )  # renewed before, not after a 401


def test_token_expiring_mid_run_is_renewed_once(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    api.script(("sites", 2), ExpireTokens())

    items = make_client(api, clock).fetch_all(SITES)

    assert items == sample_catalog()["sites"]
    assert len(api.requests_to("auth")) == 2
    assert [r.status for r in api.requests_to("sites")] == [200, 401, 200, 200, 200]


def test_a_fresh_token_refused_again_is_an_error(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    api.script(("series", 1), ExpireTokens(), ExpireTokens())

    with pytest.raises(BadCredentialsError, match="even with a freshly issued token"):
        make_client(api, clock).fetch_all(SERIES)
    assert len(api.requests_to("auth")) == 2


def test_429_waits_as_long_as_retry_after_says(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    api.script(("sites", 2), Status(429, {"Retry-After": "1"}), Status(429, {"Retry-After": "2"}))

    items = make_client(api, clock).fetch_all(SITES)

    assert items == sample_catalog()["sites"]
    assert [r.status for r in api.requests_to("sites")] == [200, 429, 429, 200, 200, 200]
    assert 1.0 in clock.sleeps and 2.0 in clock.sleeps


def test_server_errors_are_retried_with_growing_backoff(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    api.script(("site_sections", 1), Status(500), Status(502), Status(503))

    items = make_client(api, clock, backoff_base_seconds=0.5).fetch_all(SECTIONS)

    assert len(items) == 1000
    backoffs = [s for s in clock.sleeps if s > 0.05]  # the rest are rate-limit waits
    # attempt n waits between half and all of 0.5 * 2**(n-1) s
    assert len(backoffs) == 3
    for n, delay in enumerate(backoffs, start=1):
        assert 0.25 * 2 ** (n - 1) <= delay <= 0.5 * 2 ** (n - 1)


def test_a_response_slower_than_the_timeout_is_retried(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    api.script(("series", 1), Delay(1.2))
    pool = RecordingPool(clock)

    items = make_client(api, clock, timeout_seconds=0.3, pool=pool).fetch_all(SERIES)

    assert items == sample_catalog()["series"]
    first_pages = [url for _, url in pool.sent if "/series?page=1&" in url]
    assert len(first_pages) == 2  # gave up, asked again
    assert any(s > 0.05 for s in clock.sleeps)  # with a backoff in between


def test_persistent_server_errors_give_up_after_max_attempts(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    api.script(("series", 1), *[Status(503)] * 10)

    with pytest.raises(ApiUnavailableError, match=r"failed 4 times \(last: HTTP 503\)"):
        make_client(api, clock, max_attempts=4).fetch_all(SERIES)
    assert len(api.requests_to("series")) == 4


def test_a_retry_after_beyond_the_deadline_stops_at_once(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    api.script(("series", 1), Status(429, {"Retry-After": "120"}))

    with pytest.raises(DeadlineExceededError, match="--deadline-seconds"):
        make_client(api, clock, deadline_seconds=60).fetch_all(SERIES)
    assert clock.sleeps == []  # did not wait for nothing


def test_retries_stop_at_the_deadline(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    api.script(("series", 1), *[Status(500)] * 50)

    with pytest.raises(DeadlineExceededError):
        make_client(
            api, clock, deadline_seconds=10, max_attempts=50, backoff_base_seconds=1
        ).fetch_all(SERIES)
    assert clock.now - 1000.0 <= 10


def test_bad_password_says_so(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    wrong = "wrong-Pw-7781"
    with pytest.raises(BadCredentialsError) as caught:
        make_client(api, clock, password=wrong).fetch_all(SITES)

    message = str(caught.value)
    assert message.startswith("bad FreeWheel credentials")
    assert USER in message and "FREEWHEEL_PASSWORD" in message
    assert wrong not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert len(api.requests_to("auth")) == 1  # a 401 at auth is not retried


def test_forbidden_resource_is_a_permission_error(clock: FakeClock) -> None:
    with (
        FakeFreeWheelApi(USER, PASSWORD, sample_catalog(), forbidden=["series"]) as server,
        pytest.raises(PermissionDeniedError, match=r"^missing permission: GET .*/series"),
    ):
        make_client(server, clock).fetch_all(SERIES)


def test_redirects_are_refused_so_the_token_stays_home(clock: FakeClock) -> None:
    with (
        FakeFreeWheelApi(USER, PASSWORD, sample_catalog()) as elsewhere,
        FakeFreeWheelApi(USER, PASSWORD, sample_catalog()) as server,
    ):
        server.script(("series", 1), Status(302, {"Location": elsewhere.base_url + "/x"}))
        with pytest.raises(UnexpectedResponseError, match="redirect"):
            make_client(server, clock).fetch_all(SERIES)
        assert elsewhere.requests == []


@pytest.mark.parametrize("code", [307, 308])
def test_a_redirected_token_request_sends_the_password_nowhere(clock: FakeClock, code: int) -> None:
    # a 307/308 would make a client that follows redirects POST the password form again
    with (
        FakeFreeWheelApi(USER, PASSWORD, sample_catalog()) as elsewhere,
        FakeFreeWheelApi(USER, PASSWORD, sample_catalog()) as server,
    ):
        server.script("auth", Status(code, {"Location": elsewhere.base_url + "/auth/token"}))
        with pytest.raises(UnexpectedResponseError, match=rf"redirected \(HTTP {code}\)"):
            make_client(server, clock).fetch_all(SERIES)
        assert elsewhere.requests == []
        assert len(server.requests_to("auth")) == 1  # not retried either


def test_the_last_attempt_only_gets_the_time_left_before_the_deadline(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    # after waiting 9.7 of the 10 s, the retry may take 0.3 s, not the 1 s timeout: the 0.8 s
    # answer comes too late, and the next wait would pass the deadline
    api.script(("series", 1), Status(503, {"Retry-After": "9.7"}), Delay(0.8))

    with pytest.raises(DeadlineExceededError, match=r"no answer within 0\.3s") as caught:
        make_client(api, clock, timeout_seconds=1.0, deadline_seconds=10).fetch_all(SERIES)
    assert clock.sleeps == [9.7]
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_deadline_reached_after_a_timeout_carries_no_urllib3_error(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    # urllib3 waits for a retry inside its own `except` block: the error must not chain onto it
    api.script(("series", 1), Delay(1.0))

    with pytest.raises(DeadlineExceededError, match=r"no answer within 0\.3s.*waiting") as caught:
        make_client(
            api, clock, timeout_seconds=0.3, deadline_seconds=10, backoff_base_seconds=100
        ).fetch_all(SERIES)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert clock.sleeps == []


def test_a_refused_connection_is_retried_then_named(clock: FakeClock) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    with pytest.raises(ApiUnavailableError) as caught:
        FreeWheelClient(
            ClientSettings(base_url=closed, max_attempts=3, timeout_seconds=0.4),
            Credentials(USER, Secret(PASSWORD)),
            clock=clock,
            rng=random.Random(1),
        ).fetch_all(SERIES)
    assert str(caught.value).startswith(
        f"POST {closed}/auth/token failed 3 times (last: connection failed "
        "(ConnectionRefusedError))"
    )
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert len([s for s in clock.sleeps if s > 0.05]) == 2  # a backoff before each retry


def test_retry_after_is_read_whatever_its_case(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    api.script(("series", 1), Status(429, {"retry-after": "2"}))

    make_client(api, clock).fetch_all(SERIES)
    assert 2.0 in clock.sleeps


def test_an_unreadable_retry_after_falls_back_to_the_backoff(
    api: FakeFreeWheelApi, clock: FakeClock
) -> None:
    # urllib3's own parser raises on it; the client waits its backoff (0.25..0.5 s) instead
    api.script(("series", 1), Status(503, {"Retry-After": "in a minute"}))

    items = make_client(api, clock, backoff_base_seconds=0.5).fetch_all(SERIES)
    assert items == sample_catalog()["series"]
    assert [s for s in clock.sleeps if s > 0.05] == [pytest.approx(0.375, abs=0.125)]


def test_urllib3_at_debug_level_logs_no_secret(
    api: FakeFreeWheelApi, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(verbose=True, json_lines=True)
    urllib3_log = logging.getLogger("urllib3")
    level = urllib3_log.level
    urllib3_log.setLevel(logging.DEBUG)  # louder than the project ever sets it
    try:
        api.script(("sites", 1), Status(429, {"Retry-After": "0"}))
        api.script(("sites", 2), ExpireTokens(), Delay(0.8))
        make_client(api, clock, timeout_seconds=0.3).fetch_all(SITES)
    finally:
        urllib3_log.setLevel(level)

    err = capsys.readouterr().err
    assert '"logger": "urllib3.connectionpool"' in err  # urllib3 did log every exchange
    assert "/services/v4/sites?page=2" in err and "/auth/token" in err
    assert len(api.issued_tokens) == 2
    for secret in [PASSWORD, *api.issued_tokens]:
        assert secret not in err


def test_the_logging_setup_keeps_urllib3_quiet(
    api: FakeFreeWheelApi, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(verbose=True, json_lines=False)
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.WARNING
    api.script(("series", 1), Delay(0.8))

    make_client(api, clock, timeout_seconds=0.3).fetch_all(SERIES)

    err = capsys.readouterr().err
    assert "retrying FreeWheel request" in err and "no answer within 0.3s" in err
    # urllib3's own unstructured warning for the same retry is left out
    assert "Retrying (" not in err and "urllib3" not in err


def test_the_proxy_from_the_environment_is_used(
    api: FakeFreeWheelApi, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fake API doubles as an HTTP proxy: it answers absolute-form requests the same way
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", api.base_url)

    items = make_client(api, clock, base_url="http://api.freewheel.invalid").fetch_all(SERIES)
    assert items == sample_catalog()["series"]
    assert len(api.requests_to("auth")) == 1


def test_no_proxy_names_the_hosts_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "proxy.example:3128")
    monkeypatch.setenv("no_proxy", "api.freewheel.tv")

    assert isinstance(build_pool_manager("https://elsewhere.example"), urllib3.ProxyManager)
    assert not isinstance(build_pool_manager("https://api.freewheel.tv"), urllib3.ProxyManager)


def test_a_base_url_without_scheme_is_refused() -> None:
    # urllib3 would read it as http:// and send the password and token unencrypted
    with pytest.raises(FreeWheelApiError, match=r"'api\.freewheel\.tv' is not an http\(s\)://"):
        FreeWheelClient(
            ClientSettings(base_url="api.freewheel.tv"), Credentials(USER, Secret(PASSWORD))
        )


def test_api_requests_are_at_most_20_per_second(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    pool = RecordingPool(clock)
    client = make_client(api, clock, pool=pool)
    for resource in (SITES, SECTIONS, SERIES):
        client.fetch_all(resource)

    api_times = [t for t, url in pool.sent if "/services/v4/" in url]
    assert len(api_times) == 9  # sites 3 + 1 empty, sections 2 + 1 empty, series 1 + 1 empty
    assert api_times[-1] - api_times[0] >= (len(api_times) - 1) / 20 - 1e-9
    gaps = [b - a for a, b in itertools.pairwise(api_times)]
    assert min(gaps) >= 1 / 20 - 1e-9


def test_token_requests_are_at_most_3_per_second(api: FakeFreeWheelApi, clock: FakeClock) -> None:
    api.script(("sites", 1), ExpireTokens())
    api.script(("sites", 2), ExpireTokens())
    pool = RecordingPool(clock)
    make_client(api, clock, pool=pool).fetch_all(SITES)

    auth_times = [t for t, url in pool.sent if url.endswith("/auth/token")]
    assert len(auth_times) == 3
    gaps = [b - a for a, b in itertools.pairwise(auth_times)]
    assert min(gaps) >= 1 / 3 - 1e-9


def test_rate_limiter_spaces_calls_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock)
    start = clock.now
    for _ in range(41):
        limiter.acquire()
    assert clock.now - start == pytest.approx(40 / 20)


def test_rate_limiter_does_not_wait_after_a_pause() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, clock)
    limiter.acquire()
    clock.now += 5
    limiter.acquire()
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("0", 0.0), (" 2.5 ", 2.5), ("-3", 0.0), ("soon", None), (None, None)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: go now
