"""Every statement dbt sends to Athena parses in Athena's dialect and calls only functions
Athena (Trino) has: models and data tests of both compiles, and the run-time window queries."""

from __future__ import annotations

from typing import Any

from tests.athena.athena_dbt import AthenaDbtProject
from tests.athena.conftest import IncrementalCompile
from tests.athena.sql_checks import called_functions, parse_athena, trino_function_names


def unknown_functions(label: str, sql: str, known: frozenset[str]) -> list[str]:
    """One line per function of `sql` that Athena does not have (or why it does not parse)."""
    try:
        tree = parse_athena(sql)
    except Exception as error:  # sqlglot raises several error types; all mean "not Athena"
        return [f"{label}: does not parse as Athena SQL: {error}"]
    return [f"{label}: {name}()" for name in sorted(called_functions(tree, sql) - known)]


def compiled_statements(project: AthenaDbtProject) -> dict[str, str]:
    manifest: dict[str, Any] = project.manifest()
    return {
        node["unique_id"]: project.compiled_sql(node)
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "test") and node["package_name"] == "bones2peaches"
    }


def test_every_statement_calls_only_athena_functions(
    first_build: AthenaDbtProject, incremental: IncrementalCompile
) -> None:
    known = trino_function_names()
    statements = {
        **{f"first build {k}": v for k, v in compiled_statements(first_build).items()},
        **{f"incremental {k}": v for k, v in compiled_statements(incremental.project).items()},
        **{f"window query {i}": q for i, q in enumerate(incremental.queries)},
    }
    assert len(statements) > 100  # models and data tests of both compiles
    problems = [
        line for label, sql in statements.items() for line in unknown_functions(label, sql, known)
    ]
    assert not problems, "not Athena:\n" + "\n".join(problems)


def test_the_check_names_the_statement_and_the_function() -> None:
    """The control: DuckDB-only functions (and Spark's DATEDIFF, which sqlglot would otherwise
    print back as Trino's date_diff) are reported, Trino's own are not."""
    sql = (
        "select datediff(a, b), strftime(t, '%Y'), list_aggregate(l, 'sum'),"
        " date_diff('day', a, b), coalesce(a, b), cast(a as date) from x"
    )
    problems = unknown_functions("model.demo", sql, trino_function_names())
    assert problems == [
        "model.demo: datediff()",
        "model.demo: list_aggregate()",
        "model.demo: strftime()",
    ]


def test_the_check_reports_sql_athena_cannot_parse() -> None:
    problems = unknown_functions("model.demo", "select (a from x", frozenset())
    assert len(problems) == 1 and problems[0].startswith("model.demo: does not parse")
