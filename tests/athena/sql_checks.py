"""Checks on Athena SQL made with sqlglot's parser, never with text search.

- which functions a statement calls, by the name written in the SQL (sqlglot maps aliases such
  as DATEDIFF onto its own DateDiff node and would print them back in Trino's spelling, so the
  name is read from the source text at the node's position);
- whether each scan of a partitioned table is bounded on its partition column, after sqlglot's
  optimizer has pushed the query's filters down through CTEs, views and DISTINCT as far as they
  go — the same place Athena's planner needs them to prune partitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.pushdown_predicates import pushdown_predicates
from sqlglot.optimizer.qualify import qualify

TRINO_FUNCTIONS = Path(__file__).with_name("trino_functions.txt")

# Schema for sqlglot's qualifier: catalog -> database -> table -> column -> type.
Schema = Mapping[str, Mapping[str, Mapping[str, Mapping[str, str]]]]


def trino_function_names(path: Path = TRINO_FUNCTIONS) -> frozenset[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return frozenset(line.lower() for line in lines if line and not line.startswith("#"))


def parse_athena(sql: str) -> exp.Expr:
    """The statement's syntax tree in Athena's (Trino's) dialect; raises on a syntax error."""
    statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    if len(statements) != 1:
        raise ValueError(f"expected one statement, found {len(statements)}")
    return statements[0]


def _written_name(node: exp.Func, sql: str) -> str:
    start, end = node.meta.get("start"), node.meta.get("end")
    if start is not None and end is not None:
        return sql[start : end + 1].strip('"`').lower()
    # special forms parsed without a name token (CAST, TRY_CAST, TRIM, EXTRACT, SUBSTRING, IF...):
    # their keyword is sqlglot's name for them
    return node.sql_name().lower()


def called_functions(tree: exp.Expr, sql: str) -> set[str]:
    """Names of the functions `tree` (parsed from `sql`) calls, as written in the SQL."""
    names = set()
    for node in tree.find_all(exp.Func):
        # AND/OR and CASE (with its WHEN branches, which sqlglot models as IF) are syntax
        if isinstance(node, exp.Connector | exp.Case):
            continue
        if isinstance(node, exp.If) and isinstance(node.parent, exp.Case):
            continue
        # UNNEST in a FROM clause is Trino's relation syntax (SELECT ... CROSS JOIN UNNEST), not
        # a function; what it unnests (sequence(...)) is still checked
        if isinstance(node, exp.Unnest):
            continue
        names.add(_written_name(node, sql))
    return names


# ---- partition pruning


def inline_views(tree: exp.Expr, views: Mapping[str, exp.Expr]) -> exp.Expr:
    """The statement with every reference to a view replaced by the view's own query (the way
    Athena plans a query over a view), repeatedly, so views over views are expanded too."""
    tree = tree.copy()
    while True:
        # a view is a relation with a database; a CTE of the same name would have none
        references = [t for t in tree.find_all(exp.Table) if t.name in views and t.db]
        if not references:
            return tree
        for table in references:
            alias = table.alias or table.name
            table.replace(
                exp.Subquery(
                    this=views[table.name].copy(),
                    alias=exp.TableAlias(this=exp.to_identifier(alias)),
                )
            )


def push_filters_down(tree: exp.Expr, schema: Schema) -> exp.Expr:
    """sqlglot's optimizer: qualify every column, then push predicates towards the scans."""
    qualified = qualify(
        tree.copy(), dialect="athena", schema=dict(schema), validate_qualify_columns=False
    )
    return pushdown_predicates(qualified, dialect="athena")


@dataclass(frozen=True)
class Scan:
    """One read of a table in a statement and the lower bound of its partition column."""

    table: str
    lower_bound: str | None  # the date literal; None = the scan reads every partition


def _strip_identity_cast(node: exp.Expr, column_type: str) -> exp.Expr:
    # CAST(event_date AS DATE) on a column Glue already types `date` changes nothing: Trino
    # drops it before pruning. A cast to another type would hide the column from pruning.
    while isinstance(node, exp.Cast) and node.to.is_type(column_type):
        node = node.this
    return node


def _date_literal(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Cast) and node.to.is_type("date"):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return node.name
    return None


def _bound_of(predicate: exp.Expr, table_alias: str, column: str, column_type: str) -> str | None:
    def is_partition_column(node: exp.Expr) -> bool:
        node = _strip_identity_cast(node, column_type)
        return (
            isinstance(node, exp.Column) and node.name == column and node.table in ("", table_alias)
        )

    if isinstance(predicate, exp.GTE | exp.GT | exp.EQ) and is_partition_column(predicate.this):
        return _date_literal(predicate.expression)
    if isinstance(predicate, exp.LTE | exp.LT | exp.EQ) and is_partition_column(
        predicate.expression
    ):
        return _date_literal(predicate.this)
    if isinstance(predicate, exp.Between) and is_partition_column(predicate.this):
        return _date_literal(predicate.args["low"])
    return None


def scans(tree: exp.Expr, table: str, column: str, column_type: str) -> list[Scan]:
    """Every read of `table` in `tree` with the lower bound its own WHERE puts on `column`."""
    found = []
    for reference in tree.find_all(exp.Table):
        if reference.name != table:
            continue
        select = reference.parent_select
        where = select.args.get("where") if select is not None else None
        bounds = []
        if where is not None:
            for predicate in (
                where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
            ):
                bound = _bound_of(predicate, reference.alias_or_name, column, column_type)
                if bound is not None:
                    bounds.append(bound)
        found.append(Scan(table=table, lower_bound=max(bounds) if bounds else None))
    return found


def to_duckdb(sql: str, schema: Schema | None = None) -> str:
    """The Athena statement in DuckDB's dialect.

    sqlglot turns Trino's date_add(unit, n, d) into DuckDB's d + INTERVAL n unit, which is a
    timestamp even when d is a date, whereas Trino returns d's own type (a date stays a date).
    Given the relations' `schema`, date_add of a date is cast back to date, so the transpiled
    statement keeps Trino's typing."""
    tree = parse_athena(sql)
    if schema is not None:
        tree = qualify(tree, dialect="athena", schema=dict(schema))
        tree = annotate_types(tree, schema=dict(schema), dialect="athena")
        for node in list(tree.find_all(exp.DateAdd)):
            if node.this.type is not None and node.this.type.is_type("date"):
                node.replace(exp.cast(node.copy(), "date"))
    return tree.sql(dialect="duckdb")
