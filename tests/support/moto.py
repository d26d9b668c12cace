"""A real S3/SQS/Secrets Manager/CloudFormation HTTP endpoint for tests: moto's server mode.

Started once per test session on a free loopback port; boto3 reaches it through
AWS_ENDPOINT_URL exactly as it would reach AWS.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import die_with_parent, stop, wait_until_up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_server_command() -> list[str]:
    candidate = Path(sys.executable).with_name("moto_server")
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    return [sys.executable, "-m", "moto.server"]


@contextmanager
def running_moto_server() -> Iterator[str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*_moto_server_command(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        wait_until_up(
            lambda: urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read() is not None,
            proc,
            "moto_server",
            seconds=30,
        )
        yield endpoint
    finally:
        stop(proc)


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment that points boto3 (in this process or a subprocess) at the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def reset(endpoint: str) -> None:
    """Forget every resource, so tests sharing one server don't see each other's buckets."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()


def apply_env(endpoint: str) -> dict[str, str | None]:
    previous = {key: os.environ.get(key) for key in aws_env(endpoint)}
    os.environ.update(aws_env(endpoint))
    return previous
