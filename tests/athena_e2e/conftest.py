"""One deployed stack for the package: the AWS stand-in, the template's resources, Trino.

`make athena-e2e` runs this package; `SOURCE=<folder of v4 logs>`, `DIMENSIONS=<folder in the
lake's dimensions layout>` and `EXPORT=<folder>` reach it as B2P_E2E_SOURCE, B2P_E2E_DIMENSIONS
and B2P_E2E_EXPORT. Without SOURCE it generates a `b2p sample` whose ground truth the models are
checked against.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.cli import main as b2p
from tests.athena_e2e.harness import AthenaStack, running_athena_stack

SAMPLE_DAYS = 2


def pytest_report_header() -> list[str]:
    return ["athena e2e: Trino from Maven Central, AWS stand-in on 127.0.0.1"]


@pytest.fixture(scope="session")
def user_source() -> Path | None:
    source = os.environ.get("B2P_E2E_SOURCE")
    return Path(source).resolve() if source else None


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory, user_source: Path | None) -> Path | None:
    """A generated sample ending the day before yesterday (the scheduled window reaches today)."""
    if user_source is not None:
        return None
    out = tmp_path_factory.mktemp("athena-sample")
    start = dt.date.today() - dt.timedelta(days=SAMPLE_DAYS + 1)
    args = ["--start", start.isoformat(), "--days", str(SAMPLE_DAYS), "--seed", "7"]
    assert b2p(["sample", "--out", str(out), *args]) == 0
    return out


@pytest.fixture(scope="session")
def sample_start(sample: Path | None) -> dt.date:
    if sample is None:
        return dt.date(2024, 1, 1)
    return dt.date.today() - dt.timedelta(days=SAMPLE_DAYS + 1)


@pytest.fixture(scope="session")
def athena_stack(
    tmp_path_factory: pytest.TempPathFactory, sample_start: dt.date
) -> Iterator[AthenaStack]:
    work = tmp_path_factory.mktemp("athena-stack")
    started = time.monotonic()
    with running_athena_stack(work, projection_start=sample_start) as stack:
        elapsed = time.monotonic() - started
        print(f"\nathena e2e: stand-in + Trino {stack.trino.version} up in {elapsed:.0f} s")
        yield stack
