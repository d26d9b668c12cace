"""What the Ad capacity dashboard's charts received must equal the marts, summed here with SQL
of the tests' own over the DuckDB warehouse the dashboard (or the marts loaded into Trino) came
from. One function per chart group."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import yaml

from tests.bi.dashboard import DashboardLoad
from tests.support.dbt import REPO, DbtProject
from tests.support.dbt_models import mart_names

BUNDLE_DATASETS = REPO / "bi" / "bundle" / "datasets"


def bundle_relations() -> set[str]:
    """Tables the bundle's datasets read: physical ones by name, virtual ones from their SQL."""
    relations = set()
    for path in BUNDLE_DATASETS.rglob("*.yaml"):
        dataset = yaml.safe_load(path.read_text())
        if dataset["sql"]:
            relations |= set(re.findall(r"\bfrom\s+(\w+)", dataset["sql"], flags=re.IGNORECASE))
        else:
            relations.add(dataset["table_name"])
    return relations


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


# the checks that read only the capacity marts (which the generator's ground truth also holds)
CAPACITY_CHECKS = [
    check_capacity_per_day_and_slot_type_equals_the_marts,
    check_sell_through_by_site_and_section_equals_the_marts,
    check_series_with_most_unsold_hours_are_the_marts_top_15,
    check_slot_types_by_hour_of_day_equal_the_hourly_marts,
]
CHECKS = [*CAPACITY_CHECKS, check_delivery_health_shows_every_lake_row_and_no_gap]


def ground_truth_warehouse(sample: Path, like: DbtProject, work: Path) -> DbtProject:
    """A DuckDB warehouse whose capacity marts are the generator's ground truth
    (`<sample>/ground_truth/<mart>.csv`, computed from its in-memory slots, never from the log
    files), typed as the marts of `like`: CAPACITY_CHECKS over it compare a dashboard with
    figures that neither dbt nor the ingester produced."""
    truth = DbtProject(work=work, lake=like.lake)
    with (
        duckdb.connect(str(like.warehouse), read_only=True) as source,
        duckdb.connect(str(truth.warehouse)) as target,
    ):
        for mart in mart_names():
            path = sample / "ground_truth" / f"{mart}.csv"
            with path.open(encoding="utf-8") as handle:
                header = handle.readline().strip().split(",")
            typed = ", ".join(
                f'cast("{name}" as {kind}) as "{name}"'
                for name, kind, *_ in source.execute(f"describe {mart}").fetchall()
                if name in header  # the marts' own bookkeeping columns are not in the truth
            )
            target.execute(
                f"create table {mart} as select {typed} "
                f"from read_csv('{path}', header = true, all_varchar = true)"
            )
        # the truth has no column for a section's site (the mart joins it from the names): that
        # label alone comes from the DuckDB mart; every figure stays the generator's
        sites = source.execute(
            "select distinct site_section_id, site_name from capacity_by_site_section"
        ).fetchall()
        assert len({section for section, _ in sites}) == len(sites), "a section has two sites"
        target.execute("create table section_sites (site_section_id bigint, site_name varchar)")
        target.executemany("insert into section_sites values (?, ?)", sites)
        target.execute(
            "create or replace table capacity_by_site_section as "
            "select t.*, s.site_name from capacity_by_site_section t "
            "left join section_sites s "
            "on t.site_section_id is not distinct from s.site_section_id"
        )
    return truth
