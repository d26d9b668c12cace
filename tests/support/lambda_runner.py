"""Run the ingest Lambda handlers the way Lambda runs them, in a process of their own.

    python -m tests.support.lambda_runner planner
    python -m tests.support.lambda_runner worker --queue-arn ARN

The process gets the function's environment from the stack (B2P_SOURCE, B2P_LAKE, B2P_QUEUE_URL,
…) and the role's credentials (its own access key), so every AWS call the handler makes is
attributed to that role by the AWS stand-in. `worker` is also Lambda's SQS poller (the event source
mapping, which uses the function's role): it receives one message at a time (BatchSize 1), invokes
the handler with the SQS event, and deletes the messages the handler did not report failed, until
the queue is empty. It prints one JSON line with what it did.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3

from tests.support.aws_requests import ACCOUNT


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object a handler may read."""

    function_name: str
    memory_limit_in_mb: int = 3008
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def scheduled_event() -> dict[str, Any]:
    """The event EventBridge's schedule rule hands the planner."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2024-05-02T01:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/bones2peaches-ingest-schedule"],
        "detail": {},
    }


def sqs_event(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller hands the function for a batch of one."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def run_planner() -> dict[str, Any]:
    from ingest import aws_lambda as aws_handlers

    result = aws_handlers.planner_handler(scheduled_event(), LambdaContext("planner"))
    return {"planner": result}


def run_worker(queue_arn: str) -> dict[str, Any]:
    from ingest import aws_lambda as aws_handlers

    queue_url = os.environ["B2P_QUEUE_URL"]
    sqs = boto3.client("sqs")
    handled = failed = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        (message,) = messages
        response = aws_handlers.worker_handler(
            sqs_event(message, queue_arn), LambdaContext("worker")
        )
        if (response or {}).get("batchItemFailures"):
            failed += 1  # Lambda leaves a failed message for SQS to redeliver after its timeout
            break
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        handled += 1
    return {"worker": {"handled": handled, "failed": failed}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", choices=["planner", "worker"])
    parser.add_argument("--queue-arn")
    args = parser.parse_args()
    result = run_planner() if args.function == "planner" else run_worker(args.queue_arn)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
