"""`make athena-e2e SOURCE=<logs> DIMENSIONS=<dimensions> EXPORT=<folder>`: anyone's own files
through the deployed pipeline on Athena's engine, each mart read back to EXPORT/<mart>.csv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.athena_e2e.harness import MARTS, AthenaStack

pytestmark = pytest.mark.e2e


def test_user_files_build_on_athena_and_export(athena_stack: AthenaStack, user_source) -> None:
    if user_source is None:
        pytest.skip("no SOURCE given: the generated sample is checked by test_pipeline_on_athena")
    dimensions = os.environ.get("B2P_E2E_DIMENSIONS")
    if not dimensions:
        pytest.fail(
            "SOURCE needs DIMENSIONS=<folder with sites/, site_sections/, series/ *.parquet>"
        )
    athena_stack.upload_dimensions(Path(dimensions))
    logs = [
        (p, p.relative_to(user_source).as_posix())
        for p in sorted(user_source.rglob("*"))
        if p.is_file()
    ]
    assert logs, f"no files under {user_source}"
    athena_stack.upload_logs(logs)
    athena_stack.run_ingest()
    athena_stack.build()
    folder = Path(os.environ.get("B2P_E2E_EXPORT") or "athena-e2e-export")
    written = athena_stack.export(folder)
    assert [p.name for p in written] == [f"{m}.csv" for m in MARTS]
