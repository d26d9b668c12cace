"""`b2p report --html` opened in headless Chromium with every request blocked (a file that needs
the network shows nothing): each chart draws data, and the figures are `b2p report`'s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.browser import chromium, screenshot_path
from tests.support.dbt import DbtProject

pytestmark = pytest.mark.browser

CHART_IDS = [
    "chart-daily",
    "chart-sites",
    "chart-site-sections",
    "chart-series",
    "chart-hour-of-day",
    "chart-delivery-health",
]
# what plotly draws for a trace with data: bars and markers, sunburst slices, heatmap images
DRAWN = ".point, .slice, .hm image, .scatterlayer .js-line"


def b2p(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "report", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def printed_summary(text: str) -> list[list[str]]:
    """The rows of `b2p report`'s table: after the dashes, until the blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---------"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def open_report(path: Path, screenshot: str) -> dict[str, Any]:
    """What Chromium shows of the report: the summary table's cells and each chart's traces."""
    with chromium(allowed_prefixes=(path.as_uri(),), height=1200) as browser:
        page = browser.context.new_page()
        page.goto(path.as_uri())
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot').length === {len(CHART_IDS)}"
        )
        page.wait_for_timeout(1_000)
        shown = page.evaluate(
            """(drawn) => ({
                summary: Array.from(document.querySelectorAll('#summary tbody tr'))
                    .map(tr => Array.from(tr.cells).map(td => td.innerText.trim())),
                charts: Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))
                    .map(el => [el.id, {
                        traces: el.data.map(t => ({x: t.x || null, y: t.y || null,
                            values: t.values || null, labels: t.labels || null, z: t.z || null})),
                        drawn: el.querySelectorAll(drawn).length,
                    }])),
            })""",
            DRAWN,
        )
        page.screenshot(path=str(screenshot_path(screenshot)), full_page=True)
    shown["blocked"] = browser.blocked
    return shown


@pytest.fixture(scope="module")
def report(demo_warehouse: DbtProject, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("report") / "report.html"
    out = b2p("--warehouse", str(demo_warehouse.warehouse), "--html", str(path))
    assert str(path) in out, "the command prints where the report is"
    return {
        "printed": b2p("--warehouse", str(demo_warehouse.warehouse)),
        **open_report(path, "report"),
    }


def test_the_report_needs_no_network(report: dict[str, Any]) -> None:
    assert report["blocked"] == []


def test_every_chart_draws_data(report: dict[str, Any]) -> None:
    assert sorted(report["charts"]) == sorted(CHART_IDS)
    for chart_id, chart in report["charts"].items():
        assert chart["drawn"] > 0, f"{chart_id} drew nothing"
        assert any(any(t[key] for key in ("x", "y", "values", "z")) for t in chart["traces"]), (
            f"{chart_id} has no data"
        )


def test_the_summary_shows_b2p_report_s_figures(report: dict[str, Any]) -> None:
    printed = printed_summary(report["printed"])
    assert len(printed) >= 5, report["printed"]
    assert report["summary"] == printed


def test_sell_through_by_site_equals_the_marts(
    report: dict[str, Any], demo_warehouse: DbtProject
) -> None:
    (trace,) = report["charts"]["chart-sites"]["traces"]
    shown = dict(zip(trace["y"], trace["x"], strict=True))
    with duckdb.connect(str(demo_warehouse.warehouse), read_only=True) as connection:
        expected = dict(
            connection.execute(
                "select site_name, sum(monetized_seconds) / sum(capacity_seconds) "
                "from capacity_by_site group by all"
            ).fetchall()
        )
    assert shown.keys() == expected.keys()
    assert all(abs(shown[site] - expected[site]) < 1e-9 for site in expected)


def test_a_site_and_date_range_report_shows_the_same_figures_as_b2p_report(
    demo_warehouse: DbtProject, tmp_path: Path
) -> None:
    scope = ["--site", "Ñandú Deportes", "--from", "2026-11-02", "--to", "2026-11-02"]
    path = tmp_path / "site.html"
    b2p("--warehouse", str(demo_warehouse.warehouse), *scope, "--html", str(path))
    printed = b2p("--warehouse", str(demo_warehouse.warehouse), *scope)
    assert "2026-11-02 .. 2026-11-02" in printed and "site Ñandú Deportes" in printed
    shown = open_report(path, "report-one-site")
    assert shown["blocked"] == []
    assert shown["summary"] == printed_summary(printed)
    (trace,) = shown["charts"]["chart-sites"]["traces"]
    assert trace["y"] == ["Ñandú Deportes"]
