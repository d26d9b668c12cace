"""`b2p report`: the capacity summary a person reads after `make demo`, or (--html) the same
as one self-contained HTML file with charts (ingest/report_html.py).

Reads the marts dbt built in the local DuckDB warehouse; nothing here recomputes a metric.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import duckdb

from ingest.errors import UserError
from ingest.report_html import Marts, ReportScope

SUMMARY_SQL = """
select
    slot_type,
    sum(slot_impressions)   as slots,
    sum(capacity_seconds)   / 3600.0 as capacity_hours,
    sum(monetized_seconds)  / 3600.0 as monetized_hours,
    sum(unsold_seconds)     / 3600.0 as unsold_hours,
    sum(monetized_seconds)  / nullif(sum(capacity_seconds), 0) as sell_through_rate
from {relation}
where {where}
group by slot_type
order by capacity_hours desc
"""

EXAMPLE_QUERY = (
    "select event_date, site_name, capacity_seconds, monetized_seconds, sell_through_rate "
    "from capacity_by_site where slot_type = 'preroll' order by event_date, site_name"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse",
        default=os.environ.get("B2P_DUCKDB_PATH", "warehouse.duckdb"),
        help="DuckDB file dbt built (default: $B2P_DUCKDB_PATH or ./warehouse.duckdb)",
    )
    parser.add_argument(
        "--sql", help="run this query (read-only) against the warehouse and print its result"
    )
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="write the report with charts to FILE: one HTML file that opens with no network",
    )
    parser.add_argument("--from", dest="first_day", type=day, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last_day", type=day, help="last day, YYYY-MM-DD")
    parser.add_argument("--site", help="only this site (name or id; default all sites)")


def day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def find_relation(connection: duckdb.DuckDBPyConnection, name: str) -> str:
    rows = connection.execute(
        "select table_schema from information_schema.tables where table_name = ?", [name]
    ).fetchall()
    if not rows:
        raise UserError(
            f"the warehouse has no {name} table: run `dbt build --profiles-dir .` first "
            "(make demo does)"
        )
    return f'"{rows[0][0]}"."{name}"'


def format_cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(
    headers: list[str], rows: list[tuple[object, ...]], right: list[bool] | None = None
) -> str:
    """Numbers right-aligned, everything else left-aligned (or as `right` says, per column)."""
    cells = [[format_cell(value) for value in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = right or [
        any(is_number(row[i]) for row in rows)
        and all(row[i] is None or is_number(row[i]) for row in rows)
        for i in range(len(headers))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1%}"


def summary_table(
    connection: duckdb.DuckDBPyConnection, scope: ReportScope
) -> tuple[list[str], list[list[str]]]:
    """The summary's headers and cells per slot type, as printed (and shown in the HTML)."""
    relation = find_relation(connection, "capacity_by_site")
    where, parameters = scope.where(with_site=True)
    rows = connection.execute(SUMMARY_SQL.format(relation=relation, where=where), parameters)
    headers = ["slot type", "slots", "capacity h", "monetized h", "unsold h", "sell-through"]
    # sell-through is a ratio: a percentage reads better than a float
    cells = [
        [row[0], f"{row[1]:,}", *(f"{hours:,.1f}" for hours in row[2:5]), percent(row[5])]
        for row in rows.fetchall()
    ]
    return headers, cells


def covered_days(
    connection: duckdb.DuckDBPyConnection, scope: ReportScope
) -> tuple[dt.date | None, dt.date | None]:
    relation = find_relation(connection, "capacity_by_site")
    where, parameters = scope.where(with_site=True)
    first, last = connection.execute(
        f"select min(event_date), max(event_date) from {relation} where {where}", parameters
    ).fetchone() or (None, None)
    return first, last


def print_summary(connection: duckdb.DuckDBPyConnection, path: Path, scope: ReportScope) -> None:
    headers, cells = summary_table(connection, scope)
    first, last = covered_days(connection, scope)
    relation = find_relation(connection, "capacity_by_site")
    sites = f"site {scope.site}" if scope.site else "all sites"
    print(f"Ad capacity {first} .. {last}, hours of ad time, {sites}\n")
    print(format_table(headers, [tuple(row) for row in cells], right=[False] + [True] * 5))
    print(f"\nWarehouse: {path.resolve()}  (DuckDB; marts in schema {relation.split('.')[0]})")
    print(f'Query it:  .venv/bin/b2p report --sql "{EXAMPLE_QUERY}"')


def write_html(
    connection: duckdb.DuckDBPyConnection, path: Path, scope: ReportScope, target: Path
) -> None:
    from ingest import report_html

    marts = Marts(
        by_site=find_relation(connection, "capacity_by_site"),
        by_site_section=find_relation(connection, "capacity_by_site_section"),
        by_series=find_relation(connection, "capacity_by_series"),
        hourly={
            slot_type: find_relation(connection, name)
            for slot_type, name in report_html.HOURLY_MARTS.items()
        },
        delivery_health=find_relation(connection, "dq_freewheel__delivery_health"),
    )
    content = report_html.render(connection, marts, scope, summary_table(connection, scope), path)
    report_html.write(target, content)
    print(f"HTML report: {target.resolve()}  (open it in a browser; it needs no network)")


def run(args: argparse.Namespace) -> int:
    path = Path(args.warehouse)
    if not path.exists():
        raise UserError(f"no warehouse at {path}: run `make demo` (or dbt build) first")
    with duckdb.connect(str(path), read_only=True) as connection:
        if args.sql:
            try:
                result = connection.execute(args.sql)
            except duckdb.Error as exc:
                raise UserError(f"the query failed: {exc}") from None
            headers = [column[0] for column in result.description]
            print(format_table(headers, result.fetchall()))
        else:
            scope = ReportScope(args.first_day, args.last_day, args.site)
            if args.html:
                write_html(connection, path, scope, Path(args.html))
            else:
                print_summary(connection, path, scope)
    return 0
