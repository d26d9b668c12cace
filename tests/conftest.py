"""Fixtures shared by every test folder."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from ingest.logs.runner import worker_storages
from tests.support import moto


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto_server on 127.0.0.1 for the whole session (started on first use)."""
    with moto.running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean emulator and an environment that points boto3 at it; yields the endpoint URL."""
    moto.reset(moto_endpoint)
    for key, value in moto.aws_env(moto_endpoint).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    worker_storages.cache_clear()  # clients a handler cached belong to the previous test
    yield moto_endpoint
    worker_storages.cache_clear()


@pytest.fixture
def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`ingest.cli.main` points the root logger at the current stderr (a test's capture);
    put the previous handlers back so no later test logs into a closed capture."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
