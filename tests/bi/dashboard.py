"""Load a Superset dashboard in Chromium as a person would (log in, open it, wait for every
chart) and record what each chart got from /api/v1/chart/data and what it drew."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Response

from tests.support.browser import Browser, chromium, screenshot_path
from tests.support.superset import Superset, running_superset

# What Superset writes into a chart that failed or found nothing
ERROR_TEXTS = ("Unexpected error", "Error:", "error occurred", "does not exist", "not found")
EMPTY_TEXTS = ("No results were returned", "No data")


@dataclass
class ChartResult:
    slice_id: int
    name: str
    status: int | None = None  # HTTP status of its data request
    payload: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # what the chart's box shows
    graphics: int = 0  # svg, canvas and table elements drawn in it

    @property
    def rows(self) -> list[dict[str, Any]]:
        results = self.payload.get("result") or [{}]
        return list(results[0].get("data") or [])

    def problems(self) -> list[str]:
        found = []
        if self.status != 200:
            found.append(f"data request answered {self.status}: {json.dumps(self.payload)[:300]}")
        for result in self.payload.get("result") or []:
            if result.get("error"):
                found.append(f"query error: {result['error'][:300]}")
        if self.status == 200 and not self.rows:
            found.append("no rows")
        found += [f"shows {t!r}: {self.text[:200]!r}" for t in ERROR_TEXTS if t in self.text]
        found += [f"shows the empty state {t!r}" for t in EMPTY_TEXTS if t in self.text]
        if self.graphics == 0:
            found.append("drew nothing (no svg, canvas or table)")
        return [f"{self.name}: {problem}" for problem in found]


@dataclass
class DashboardLoad:
    charts: dict[str, ChartResult]  # by chart name
    seconds: float

    def problems(self) -> list[str]:
        return [problem for chart in self.charts.values() for problem in chart.problems()]


def log_in(page: Page, superset: Superset) -> None:
    page.goto(f"{superset.url}/login/")
    page.fill("input[name=username], #username", superset.user)
    page.fill("input[name=password], #password", superset.password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/superset/welcome/**", timeout=60_000)


def slice_id_of(response: Response) -> int | None:
    """The chart a dashboard's data request is for: ?form_data={"slice_id": N}."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(response.url).query)
    for value in query.get("form_data", []):
        slice_id = json.loads(value).get("slice_id")
        if slice_id is not None:
            return int(slice_id)
    return None


def rison_string(value: str) -> str:
    return "'" + value.replace("!", "!!").replace("'", "!'") + "'"


def native_filters(values: dict[str, tuple[str, list[str] | str]]) -> str:
    """The dashboard URL's ?native_filters= (rison) for {filter id: (column, values)}; a column
    of "__time_range" sets a time filter to a "start : end" string."""
    parts = []
    for filter_id, (column, value) in values.items():
        if column == "__time_range":
            assert isinstance(value, str)
            extra = f"(time_range:{rison_string(value)})"
            state = rison_string(value)
        else:
            listed = "!(" + ",".join(rison_string(v) for v in value) + ")"
            extra = f"(filters:!((col:{column},op:IN,val:{listed})))"
            state = listed
        parts.append(
            f"{filter_id}:(extraFormData:{extra},filterState:(value:{state}),"
            f"id:{filter_id},ownState:())"
        )
    return "?native_filters=" + urllib.parse.quote("(" + ",".join(parts) + ")")


def load_dashboard(
    browser: Browser,
    superset: Superset,
    slug: str,
    screenshot: Path,
    timeout: float = 180,
    query: str = "",
) -> DashboardLoad:
    page = browser.context.new_page()
    log_in(page, superset)
    listing = page.request.get(f"{superset.url}/api/v1/dashboard/{slug}/charts")
    assert listing.ok, f"dashboard {slug}: {listing.status} {listing.text()[:300]}"
    charts = {
        item["id"]: ChartResult(slice_id=item["id"], name=item["slice_name"])
        for item in listing.json()["result"]
    }
    assert charts, f"dashboard {slug} has no charts"

    def record(response: Response) -> None:
        if "/api/v1/chart/data" not in response.url:
            return
        slice_id = slice_id_of(response)
        if slice_id in charts and charts[slice_id].status is None:
            charts[slice_id].status = response.status
            try:
                charts[slice_id].payload = response.json()
            except ValueError:
                charts[slice_id].payload = {"body": response.text()[:500]}

    page.on("response", record)
    started = time.monotonic()
    page.goto(superset.dashboard_url(slug) + query)
    deadline = started + timeout
    while any(c.status is None for c in charts.values()) and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    # every chart box has finished drawing: no loading indicator left
    page.wait_for_function(
        "() => document.querySelectorAll('[data-test-chart-id]').length > 0 && "
        "document.querySelectorAll('[data-test-chart-id] .loading').length === 0",
        timeout=max(1_000, int((deadline - time.monotonic()) * 1000)),
    )
    page.wait_for_timeout(1_500)  # chart animations
    seconds = time.monotonic() - started
    for slice_id, chart in charts.items():
        box = page.locator(f'[data-test-chart-id="{slice_id}"]')
        if box.count():
            chart.text = box.first.inner_text()
            chart.graphics = box.first.locator("svg, canvas, table").count()
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return DashboardLoad({chart.name: chart for chart in charts.values()}, seconds)


def load_over(
    warehouse_env: dict[str, str],
    home: Path,
    screenshot: str,
    before_load: Callable[[], None] = lambda: None,
) -> DashboardLoad:
    """A Superset of its own provisioned over `warehouse_env` (B2P_BI_ENGINE and its variables)
    into `home`, the dashboard loaded once in Chromium (screenshot `<screenshot>.png`), then
    Superset stopped. `before_load` runs once Superset is up (provisioned, its metadata fetched)
    and before the page opens: what the page alone sends comes after it."""
    with running_superset(home, warehouse_env) as superset:
        before_load()
        return load_in_chromium(superset, screenshot)


def load_in_chromium(
    superset: Superset, screenshot: str, slug: str = "ad-capacity", query: str = ""
) -> DashboardLoad:
    """A dashboard (the Ad capacity one) loaded once in Chromium, which may reach Superset only;
    `query`: URL parameters (native filters)."""
    with chromium(allowed_prefixes=(superset.url,), height=2400) as browser:
        load = load_dashboard(browser, superset, slug, screenshot_path(screenshot), query=query)
    assert browser.blocked == [], f"the dashboard reached outside Superset: {browser.blocked}"
    return load
