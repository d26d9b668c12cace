"""The offline reviews a security team runs: cfn-lint and checkov, as the command-line tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cfn import REPO_ROOT, TEMPLATE_PATH, load_template


def venv_tool(name: str) -> str:
    tool = Path(sys.executable).with_name(name)
    if not tool.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}; run make install")
    return str(tool)


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    """One checkov run per session: it takes seconds, and every assertion reads the same report."""
    completed = subprocess.run(
        [
            venv_tool("checkov"),
            "--directory",
            str(REPO_ROOT / "infra"),
            "--framework",
            "cloudformation",
            "--quiet",
            "--compact",
            "--skip-download",  # no calls home: the tests use no network but 127.0.0.1
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report:\n{completed.stdout}\n{completed.stderr}")
    return report


def test_cfn_lint_is_clean() -> None:
    completed = subprocess.run(
        [venv_tool("cfn-lint"), str(TEMPLATE_PATH), str(REPO_ROOT / "infra" / "analytics.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_checkov_finds_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        (c["check_id"], c["resource"], c["check_name"])
        for c in checkov_report["results"].get("failed_checks", [])
    ]
    assert failed == []
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    # guards against checkov silently scanning nothing
    # every template in infra/: the main stack and the analytics stack
    templates = sorted((REPO_ROOT / "infra").glob("*.yaml"))
    assert summary["resource_count"] == sum(len(load_template(t)["Resources"]) for t in templates)
    assert summary["passed"] > 50


def test_every_checkov_skip_says_why() -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in load_template()["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips, "expected the documented skips (access logs, Lambda VPC and DLQ)"
    for logical_id, skip in skips:
        assert len(skip.get("comment", "")) > 40, (
            f"{logical_id} skips {skip['id']} without a reason"
        )
