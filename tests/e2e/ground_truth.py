"""Compare a relation in the DuckDB warehouse with a ground-truth CSV written by `b2p sample`.

The ground truth comes from the generator's in-memory model of the slots and ads it made; the
warehouse comes from ingest + dbt. Agreement row by row is the evidence the pipeline is right.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from tests.support.dbt import DbtProject
from tests.support.dbt_models import grain, mart_names

TOLERANCE = 1e-6

# the models compared row by row (each has a ground-truth file of its name) -> their grain
GRAINS: dict[str, tuple[str, ...]] = {
    model: grain(model) for model in ("stg_freewheel__slots", *mart_names())
}


def as_text(value: object) -> str:
    """The ground truth's spelling of a warehouse value ('' for null)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def values_agree(expected: str, actual: object) -> bool:
    if expected == "" or actual is None:
        return expected == "" and actual is None
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return math.isclose(float(expected), float(actual), rel_tol=0, abs_tol=TOLERANCE)
    return expected == as_text(actual)


def read_ground_truth(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_relation(warehouse: Path, name: str) -> list[dict[str, object]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        schema = connection.execute(
            "select table_schema from information_schema.tables where table_name = ?", [name]
        ).fetchone()
        assert schema, f"{name} is not in the warehouse"
        result = connection.execute(f'select * from "{schema[0]}"."{name}"')
        columns = [c[0] for c in result.description]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def differences(
    expected: list[dict[str, str]], actual: list[dict[str, object]], key: tuple[str, ...]
) -> list[str]:
    """Every disagreement between the two row sets, as readable lines (empty = identical)."""
    problems: list[str] = []
    actual_by_key: dict[tuple[str, ...], dict[str, object]] = {}
    for row in actual:
        k = tuple(as_text(row[c]) for c in key)
        if k in actual_by_key:
            problems.append(f"duplicate key {k} in the warehouse")
        actual_by_key[k] = row
    expected_keys = set()
    for row in expected:
        k = tuple(row[c] for c in key)
        expected_keys.add(k)
        got = actual_by_key.get(k)
        if got is None:
            problems.append(f"missing row {k}")
            continue
        for column, value in row.items():
            if column not in got:
                problems.append(f"column {column} missing from the warehouse")
            elif not values_agree(value, got[column]):
                problems.append(f"{k} {column}: expected {value!r}, got {got[column]!r}")
    for k in actual_by_key.keys() - expected_keys:
        problems.append(f"unexpected row {k}")
    return problems


def assert_matches_ground_truth(project: DbtProject, sample: Path) -> None:
    """Every row of stg_freewheel__slots and of every mart equals the sample's ground truth."""
    expected = {
        model: read_ground_truth(sample / "ground_truth" / f"{model}.csv") for model in GRAINS
    }
    assert_models_equal(expected, lambda model: read_relation(project.warehouse, model))


def assert_models_equal(
    expected: dict[str, list[dict[str, str]]], read: Callable[[str], list[dict[str, Any]]]
) -> None:
    """Every row of each model of GRAINS, as `read(model)` gives it, equals `expected[model]`."""
    report = []
    for model, key in GRAINS.items():
        assert expected[model], f"ground truth for {model} is empty"
        problems = differences(expected[model], read(model), key)
        if problems:
            report.append(
                f"{model}: {len(problems)} problems, e.g.\n  " + "\n  ".join(problems[:10])
            )
    assert not report, "\n".join(report)
