"""Fixtures of the log-ingest tests: a source and a lake bucket on moto_server."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

SOURCE_BUCKET = "freewheel-delivery"
LAKE_BUCKET = "lake"


@pytest.fixture
def s3(aws: str) -> Any:
    """An S3 client on a clean moto_server with the two buckets created."""
    client = boto3.client("s3", endpoint_url=aws)
    client.create_bucket(Bucket=SOURCE_BUCKET)
    client.create_bucket(Bucket=LAKE_BUCKET)
    return client
