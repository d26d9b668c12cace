"""What the Ad capacity dashboard's charts received must equal the marts, summed here with SQL
of the tests' own over the DuckDB warehouse the dashboard (or the marts loaded into Trino) came
from. One function per chart group; `check_all` runs them all."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import duckdb

from tests.bi.dashboard import DashboardLoad
from tests.support.dbt import DbtProject

TOLERANCE = 1e-6


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


def check_capacity_per_day_and_slot_type_equals_the_marts(
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


def check_sell_through_by_site_and_section_equals_the_marts(
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


def check_series_with_most_unsold_hours_are_the_marts_top_15(
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


def check_slot_types_by_hour_of_day_equal_the_hourly_marts(
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


def check_delivery_health_shows_every_lake_row_and_no_gap(
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


CHECKS = [
    check_capacity_per_day_and_slot_type_equals_the_marts,
    check_sell_through_by_site_and_section_equals_the_marts,
    check_series_with_most_unsold_hours_are_the_marts_top_15,
    check_slot_types_by_hour_of_day_equal_the_hourly_marts,
    check_delivery_health_shows_every_lake_row_and_no_gap,
]
