"""The Ad capacity dashboard in headless Chromium: log in, wait for every chart, check that each
drew data (not an error, not an empty state), and that what the charts got equals the marts,
summed here with SQL of the test's own. A copy of the bundle whose dataset points at a missing
column must fail the same checks."""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.bi.dashboard import DashboardLoad, load_dashboard
from tests.support.browser import chromium, screenshot_path
from tests.support.dbt import REPO, DbtProject
from tests.support.superset import Superset

pytestmark = pytest.mark.browser

BUNDLE = REPO / "bi" / "bundle"
CHARTS = {
    "Capacity, monetized and unsold hours per day by slot type",
    "Monetized and unsold hours per day",
    "Sell-through by site",
    "Sell-through by site section",
    "Series with the most unsold hours",
    "Preroll, midroll and overlay by hour of day",
    "Hours with a delivery gap",
    "Rows delivered per hour",
}
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def loaded(superset: Superset) -> DashboardLoad:
    with chromium(allowed_prefixes=(superset.url,), height=2400) as browser:
        load = load_dashboard(browser, superset, "ad-capacity", screenshot_path("dashboard"))
    assert browser.blocked == [], f"the dashboard reached outside Superset: {browser.blocked}"
    print(f"\ndashboard: every chart loaded in {load.seconds:.1f} s")
    return load


def test_every_chart_draws_data(loaded: DashboardLoad) -> None:
    assert set(loaded.charts) == CHARTS
    assert loaded.problems() == []


# ---- the numbers


def marts(project: DbtProject, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def as_day(value: Any) -> dt.date:
    """Superset sends temporal values as epoch milliseconds."""
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC).date()
    return dt.date.fromisoformat(str(value)[:10])


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE)


def assert_same(
    actual: dict[Any, tuple[float, ...]], expected: dict[Any, tuple[float, ...]]
) -> None:
    assert set(actual) == set(expected), (sorted(actual)[:5], sorted(expected)[:5])
    wrong = {
        k: (actual[k], expected[k]) for k in expected if not all(map(close, actual[k], expected[k]))
    }
    assert wrong == {}


def test_capacity_per_day_and_slot_type_equals_the_marts(
    loaded: DashboardLoad, demo_warehouse: DbtProject
) -> None:
    chart = loaded.charts["Capacity, monetized and unsold hours per day by slot type"]
    actual = {
        (as_day(r["event_date"]), r["slot_type"]): (
            r["capacity_hours"], r["monetized_hours"], r["unsold_hours"], r["sell_through"]
        )
        for r in chart.rows
    }  # fmt: skip
    expected = {
        (day, slot_type): values
        for day, slot_type, *values in marts(
            demo_warehouse,
            "select event_date, slot_type, sum(capacity_seconds) / 3600, "
            "sum(monetized_seconds) / 3600, sum(unsold_seconds) / 3600, "
            "sum(monetized_seconds) / sum(capacity_seconds) "
            "from capacity_by_site group by all",
        )
    }
    assert_same(actual, expected)


def test_sell_through_by_site_and_section_equals_the_marts(
    loaded: DashboardLoad, demo_warehouse: DbtProject
) -> None:
    sites = {
        r["site_name"]: (r["sell_through"],) for r in loaded.charts["Sell-through by site"].rows
    }
    expected_sites = {
        site: (rate,)
        for site, rate in marts(
            demo_warehouse,
            "select site_name, sum(monetized_seconds) / sum(capacity_seconds) "
            "from capacity_by_site group by all",
        )
    }
    assert_same(sites, expected_sites)
    sections = {
        (r["site_name"], r["site_section_name"]): (r["sell_through"], r["capacity_hours"])
        for r in loaded.charts["Sell-through by site section"].rows
    }
    expected_sections = {
        (site, section): (rate, hours)
        for site, section, rate, hours in marts(
            demo_warehouse,
            "select site_name, site_section_name, "
            "sum(monetized_seconds) / sum(capacity_seconds), sum(capacity_seconds) / 3600 "
            "from capacity_by_site_section group by all",
        )
    }
    assert_same(sections, expected_sections)


def test_series_with_most_unsold_hours_are_the_marts_top_15(
    loaded: DashboardLoad, demo_warehouse: DbtProject
) -> None:
    shown = {
        r["series_name"]: (r["unsold_hours"],)
        for r in loaded.charts["Series with the most unsold hours"].rows
    }
    top = marts(
        demo_warehouse,
        "select series_name, sum(unsold_seconds) / 3600 as h from capacity_by_series "
        "group by all order by h desc limit 15",
    )
    assert_same(shown, {name: (hours,) for name, hours in top})


def test_slot_types_by_hour_of_day_equal_the_hourly_marts(
    loaded: DashboardLoad, demo_warehouse: DbtProject
) -> None:
    # a time-series chart with a group-by: one column per slot type, one row per hour
    actual = {
        (slot_type, int(row["event_hour"])): (value,)
        for row in loaded.charts["Preroll, midroll and overlay by hour of day"].rows
        for slot_type, value in row.items()
        if slot_type != "event_hour" and value is not None
    }
    expected = {
        (slot_type, hour): (hours,)
        for slot_type in ("preroll", "midroll", "overlay")
        for hour, hours in marts(
            demo_warehouse,
            f"select event_hour, sum(capacity_seconds) / 3600 from capacity_{slot_type} "
            "group by all",
        )
    }
    assert_same(actual, expected)


def test_delivery_health_shows_every_lake_row_and_no_gap(
    loaded: DashboardLoad, demo_warehouse: DbtProject
) -> None:
    (gaps,) = loaded.charts["Hours with a delivery gap"].rows
    assert list(gaps.values()) == [0]
    cells = loaded.charts["Rows delivered per hour"].rows
    # every row of the lake, counted from its Parquet files (not through dbt)
    ((lake_rows,),) = marts(
        demo_warehouse,
        f"select count(*) from read_parquet('{demo_warehouse.lake}/v4_events/*/*/*.parquet')",
    )
    assert sum(cell["rows_delivered"] for cell in cells) == lake_rows
    assert len(cells) == len(marts(demo_warehouse, "select * from dq_freewheel__delivery_health"))


# ---- a chart's dataset pointing at a missing column must fail the checks


def broken_bundle(target: Path) -> Path:
    """bi/bundle with new UUIDs and slug (it does not replace the real dashboard), and the
    unsold-hours metric of the series dataset reading a column that does not exist."""
    shutil.copytree(BUNDLE, target)
    uuids = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    for path in target.rglob("*.yaml"):
        text = uuids.sub(lambda m: str(uuid.uuid5(uuid.NAMESPACE_URL, m[0])), path.read_text())
        text = text.replace("slug: ad-capacity", "slug: ad-capacity-broken")
        text = text.replace("dashboard_title: Ad capacity", "dashboard_title: Ad capacity (broken)")
        path.write_text(text)
    series = target / "datasets" / "bones2peaches_warehouse" / "capacity_by_series.yaml"
    text = series.read_text()
    assert "SUM(unsold_seconds) / 3600.0" in text
    series.write_text(text.replace("SUM(unsold_seconds) / 3600.0", "SUM(unsold_secondz) / 3600.0"))
    return target


def test_a_dataset_pointing_at_a_missing_column_fails_the_checks(
    superset: Superset, tmp_path: Path
) -> None:
    superset.provision(B2P_BI_BUNDLE=str(broken_bundle(tmp_path / "bundle")))
    with chromium(allowed_prefixes=(superset.url,), height=2400) as browser:
        load = load_dashboard(
            browser, superset, "ad-capacity-broken", screenshot_path("dashboard-broken-column")
        )
    problems = load.problems()
    assert problems, "a chart over a missing column passed the checks"
    assert all(p.startswith("Series with the most unsold hours: ") for p in problems), problems
    assert any("unsold_secondz" in p for p in problems), problems
