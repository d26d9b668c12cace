"""The dbt project's models as tests and benchmarks need them, read from the project itself.

The list of marts is the `models/marts/` folder and each model's grain is the
`unique_combination_of_columns` test its YAML declares, so no test or benchmark keeps its own copy
of either (a new mart, or a changed grain, reaches every check by itself).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"


def model_names(folder: str | None = None) -> list[str]:
    """The models of `models/<folder>` (every model when folder is None), sorted."""
    root = MODELS / folder if folder else MODELS
    return sorted(path.stem for path in root.rglob("*.sql"))


def mart_names() -> list[str]:
    return model_names("marts")


@functools.cache
def _documented_models() -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for path in sorted(MODELS.rglob("*.yml")):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            models[model["name"]] = model
    return models


def grain(model: str) -> tuple[str, ...]:
    """The columns of the model's `unique_combination_of_columns` test in its YAML."""
    for test in _documented_models()[model].get("data_tests", []):
        if isinstance(test, dict) and "unique_combination_of_columns" in test:
            return tuple(
                test["unique_combination_of_columns"]["arguments"]["combination_of_columns"]
            )
    raise LookupError(f"{model} declares no unique_combination_of_columns test in its YAML")


def documented_columns(model: str) -> list[str]:
    """The column names the model's YAML documents, in order."""
    return [column["name"] for column in _documented_models()[model].get("columns", [])]
