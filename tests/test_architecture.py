"""The package's shape, as ARCHITECTURE.md states it: which wing may import which, no import
circles (imports inside functions count too), and modules small enough to read in one sitting.

Measured on the source with `ast`, so a lazy import cannot hide a circle or a wrong direction.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.dbt import REPO

PACKAGE = REPO / "ingest"
MAX_LINES = 500
# The synthetic publisher is one data model read top to bottom; splitting it would scatter the
# catalogue, the slot layout and the showcase cases that belong together.
LONG_MODULES_ALLOWED = {"ingest.sample.world"}

# wing -> the wings it may import (besides itself). ARCHITECTURE.md, "Packages".
ALLOWED: dict[str, set[str]] = {
    "ingest.errors": set(),
    "ingest.structured_logging": set(),
    "ingest.storage": {"ingest.errors"},
    "ingest.logs": {"ingest.storage", "ingest.errors", "ingest.structured_logging"},
    "ingest.names": {"ingest.storage", "ingest.errors"},
    "ingest.inspect": {"ingest.logs", "ingest.storage", "ingest.errors"},
    "ingest.sample": {"ingest.logs", "ingest.names", "ingest.storage", "ingest.errors"},
    "ingest.aws_lambda": {
        "ingest.logs",
        "ingest.storage",
        "ingest.errors",
        "ingest.structured_logging",
    },
    "ingest.report": {"ingest.errors", "ingest.report_html"},
    "ingest.report_html": {"ingest.errors"},
    "ingest.backfill": {"ingest.errors", "ingest.storage"},
    # the subcommands are imported by name (a string), only the one invoked
    "ingest.cli": {"ingest.errors", "ingest.structured_logging"},
    "ingest": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif node.module in known:
                    found.add(node.module)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def wing(module: str) -> str:
    return max((w for w in ALLOWED if module == w or module.startswith(w + ".")), key=len)


def test_every_module_belongs_to_a_declared_wing() -> None:
    assert all(wing(module) for module in modules())


def test_wings_import_only_what_they_may() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if wing(target) != wing(module) and wing(target) not in ALLOWED[wing(module)]
    )
    assert not wrong, "imports against ARCHITECTURE.md's package rules:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_modules_stay_under_500_lines() -> None:
    long = {
        name: len(path.read_text().splitlines())
        for name, path in modules().items()
        if len(path.read_text().splitlines()) > MAX_LINES and name not in LONG_MODULES_ALLOWED
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_imports_inside_functions_are_in_the_graph() -> None:
    """The graph is built from the source: the two known lazy imports are in it."""
    edges = graph()
    assert "ingest.storage.s3" in edges["ingest.storage"]  # inside open_storage()
    assert "ingest.storage.aws" in edges["ingest.names.secrets"]  # inside a function
