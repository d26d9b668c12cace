"""The Ad capacity dashboard in headless Chromium: log in, wait for every chart, check that each
drew data (not an error, not an empty state), and that what the charts got equals the marts,
summed here with SQL of the test's own. A copy of the bundle whose dataset points at a missing
column must fail the same checks."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bi import expectations
from tests.bi.dashboard import DashboardLoad, load_in_chromium, native_filters
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


@pytest.fixture(scope="module")
def loaded(superset: Superset) -> DashboardLoad:
    load = load_in_chromium(superset, "dashboard")
    print(f"\ndashboard: every chart loaded in {load.seconds:.1f} s")
    return load


def test_every_chart_draws_data(loaded: DashboardLoad) -> None:
    assert set(loaded.charts) == CHARTS
    assert loaded.problems() == []


@pytest.mark.parametrize("check", expectations.CHECKS, ids=lambda c: c.__name__[6:])
def test_chart_data_equals_the_marts(
    check: Callable[[DashboardLoad, DbtProject], None],
    loaded: DashboardLoad,
    demo_warehouse: DbtProject,
) -> None:
    check(loaded, demo_warehouse)


# ---- the filters: date range, site, slot type

SITE, SLOT_TYPE, DAY = "Ñandú Deportes", "preroll", "2026-11-02"


@pytest.fixture(scope="module")
def filtered(superset: Superset) -> DashboardLoad:
    """The dashboard opened with its three filters set (as a person's choices are kept in the
    URL): one site, one slot type, one day ([start, end) in Superset's time range)."""
    query = native_filters(
        {
            "NATIVE_FILTER-site": ("site_name", [SITE]),
            "NATIVE_FILTER-slot-type": ("slot_type", [SLOT_TYPE]),
            "NATIVE_FILTER-date-range": ("__time_range", f"{DAY} : 2026-11-03"),
        }
    )
    return load_in_chromium(superset, "dashboard-filtered", query=query)


def test_the_filters_narrow_every_chart_whose_dataset_has_the_column(
    filtered: DashboardLoad, demo_warehouse: DbtProject
) -> None:
    assert filtered.problems() == []
    daily = filtered.charts["Capacity, monetized and unsold hours per day by slot type"].rows
    assert {(expectations.as_day(r["event_date"]).isoformat(), r["slot_type"]) for r in daily} == {
        (DAY, SLOT_TYPE)
    }
    ((capacity,),) = expectations.marts(
        demo_warehouse,
        "select sum(capacity_seconds) / 3600 from capacity_by_site "
        f"where site_name = '{SITE}' and slot_type = '{SLOT_TYPE}' and event_date = '{DAY}'",
    )
    assert expectations.close(daily[0]["capacity_hours"], capacity)
    assert [r["site_name"] for r in filtered.charts["Sell-through by site"].rows] == [SITE]
    sections = filtered.charts["Sell-through by site section"].rows
    assert sections and {r["site_name"] for r in sections} == {SITE}
    # the series and hourly marts have no site: slot type and day apply, the site does not
    series = filtered.charts["Series with the most unsold hours"].rows
    expected_series = dict(
        expectations.marts(
            demo_warehouse,
            "select series_name, sum(unsold_seconds) / 3600 as h from capacity_by_series "
            f"where slot_type = '{SLOT_TYPE}' and event_date = '{DAY}' "
            "group by all order by h desc limit 15",
        )
    )
    assert {r["series_name"]: r["unsold_hours"] for r in series}.keys() == expected_series.keys()
    hourly = filtered.charts["Preroll, midroll and overlay by hour of day"].rows
    assert {k for row in hourly for k in row if k != "event_hour"} == {SLOT_TYPE}


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
    load = load_in_chromium(superset, "dashboard-broken-column", slug="ad-capacity-broken")
    problems = load.problems()
    assert problems, "a chart over a missing column passed the checks"
    assert all(p.startswith("Series with the most unsold hours: ") for p in problems), problems
    assert any("unsold_secondz" in p for p in problems), problems
