"""`b2p report`: the capacity summary a person reads after `make demo`.

Reads the marts dbt built in the local DuckDB warehouse; nothing here recomputes a metric.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import duckdb

from ingest.errors import UserError

SUMMARY_SQL = """
select
    slot_type,
    sum(slot_impressions)   as slots,
    sum(capacity_seconds)   / 3600.0 as capacity_hours,
    sum(monetized_seconds)  / 3600.0 as monetized_hours,
    sum(unsold_seconds)     / 3600.0 as unsold_hours,
    sum(monetized_seconds)  / nullif(sum(capacity_seconds), 0) as sell_through_rate
from {relation}
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


def print_summary(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    relation = find_relation(connection, "capacity_by_site")
    rows = connection.execute(SUMMARY_SQL.format(relation=relation)).fetchall()
    first, last = connection.execute(
        f"select min(event_date), max(event_date) from {relation}"
    ).fetchone()
    headers = ["slot type", "slots", "capacity h", "monetized h", "unsold h", "sell-through"]
    # sell-through is a ratio: a percentage reads better than a float
    shown = [
        (row[0], row[1], *(f"{hours:,.1f}" for hours in row[2:5]), percent(row[5])) for row in rows
    ]
    print(f"Ad capacity {first} .. {last}, hours of ad time, all sites\n")
    print(format_table(headers, shown, right=[False] + [True] * 5))
    print(f"\nWarehouse: {path.resolve()}  (DuckDB; marts in schema {relation.split('.')[0]})")
    print(f'Query it:  .venv/bin/b2p report --sql "{EXAMPLE_QUERY}"')


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
            print_summary(connection, path)
    return 0
