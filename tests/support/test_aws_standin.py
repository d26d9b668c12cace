"""The stand-in's own GetPartitions answer is the one moto's serializer gives."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from tests.support.aws_standin import running_aws_standin

COLUMNS = [{"Name": f"c{i}", "Type": "string", "Comment": "x"} for i in range(5)]
STORAGE = {
    "Columns": COLUMNS,
    "Location": "s3://lake/t/",
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "SerdeInfo": {"SerializationLibrary": "parquet", "Parameters": {"k": "v"}},
}


def fill(glue: Any) -> None:
    glue.create_database(DatabaseInput={"Name": "d"})
    glue.create_table(
        DatabaseName="d",
        TableInput={
            "Name": "t",
            "StorageDescriptor": STORAGE,
            "PartitionKeys": [{"Name": "event_date", "Type": "string"}],
        },
    )
    for day in range(1, 31):
        glue.create_partition(
            DatabaseName="d",
            TableName="t",
            PartitionInput={
                "Values": [f"2026-11-{day:02d}"],
                "StorageDescriptor": dict(STORAGE, Location=f"s3://lake/t/{day}/"),
                "Parameters": {"written_by": "dbt"},
            },
        )


def answers(glue: Any) -> list[list[dict[str, Any]]]:
    everything = glue.get_partitions(DatabaseName="d", TableName="t")
    some = glue.get_partitions(
        DatabaseName="d", TableName="t", Expression="event_date >= '2026-11-20'"
    )
    return [
        [{k: v for k, v in p.items() if k != "CreationTime"} for p in answer["Partitions"]]
        for answer in (everything, some)
    ]


def test_get_partitions_answers_as_moto_does() -> None:
    with running_aws_standin() as standin:
        glue = boto3.client(
            "glue",
            region_name="us-east-1",
            endpoint_url=standin.endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        fill(glue)
        fast = answers(glue)
        assert (
            "CreationTime" in glue.get_partitions(DatabaseName="d", TableName="t")["Partitions"][0]
        )
    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        fill(glue)
        assert fast == answers(glue)
    assert len(fast[0]) == 30 and len(fast[1]) == 11
