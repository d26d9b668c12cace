"""The engine reads the lake by the Glue types: a Parquet file whose column type differs from
its Glue column (site_id written as text where Glue says bigint) fails the query, as on Athena,
instead of passing as a DuckDB read of the same file would."""

from __future__ import annotations

import datetime as dt
import io
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.athena_e2e.harness import AthenaStack

pytestmark = pytest.mark.e2e


def run_query(stack: AthenaStack, sql: str) -> dict:
    athena = stack.deployment.client("athena", "DbtTaskRole")
    workgroup = stack.deployment.stack.physical("DbtWorkGroup")
    query_id = athena.start_query_execution(
        QueryString=sql,
        WorkGroup=workgroup,
        QueryExecutionContext={"Catalog": "awsdatacatalog", "Database": stack.deployment.database},
    )["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return status
        time.sleep(0.2)


def test_a_parquet_type_that_differs_from_glue_fails_the_query(athena_stack: AthenaStack) -> None:
    day = dt.date.today()
    key = f"v4_events/event_date={day}/event_hour=5/wrong-type.parquet"
    good = f"select count(*) from v4_events where event_date = date '{day}' and event_hour = 5"
    bad = f"select sum(site_id) from v4_events where event_date = date '{day}' and event_hour = 5"
    table = pa.table({"transaction_id": ["t"], "event_name": ["slotImpression"], "site_id": ["12"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3 = athena_stack.deployment.client("s3")
    s3.put_object(Bucket=athena_stack.deployment.lake_bucket, Key=key, Body=buffer.getvalue())
    try:
        assert run_query(athena_stack, good)["State"] == "SUCCEEDED"  # the control
        status = run_query(athena_stack, bad)
    finally:
        s3.delete_object(Bucket=athena_stack.deployment.lake_bucket, Key=key)
    assert status["State"] == "FAILED"
    assert "site_id" in status["StateChangeReason"], status["StateChangeReason"]
