"""Two builds on one deployment (a long backfill and the 6-hourly schedule) would rebuild the
same days with the same temporary tables: one must run, the other stop with a clear message."""

from __future__ import annotations

import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from tests.athena_e2e.harness import AthenaStack

pytestmark = pytest.mark.e2e

LOCK = "b2p_run_lock"


def lock_exists(stack: AthenaStack) -> bool:
    try:
        stack.deployment.client("glue").get_table(DatabaseName=stack.deployment.database, Name=LOCK)
    except ClientError as error:
        if error.response["Error"]["Code"] == "EntityNotFoundException":
            return False
        raise
    return True


def test_a_build_started_while_another_runs_stops_and_nothing_is_doubled(
    athena_stack: AthenaStack,
) -> None:
    # the holder: a run that takes the lock (any run does), then builds a view; the stand-in
    # keeps its view statement running until the second run has been turned away
    holder = ("run", "--select", "stg_freewheel__sites", "--target", "athena")
    athena_stack.standin.hold("create or replace view", "holder")
    command = athena_stack.dbt_command(*holder, name="dbt-first")
    first = subprocess.Popen(
        command,
        env=athena_stack.dbt_env(),
        cwd=athena_stack.work,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not lock_exists(athena_stack):
            assert first.poll() is None, "the first build ended before taking the lock"
            assert time.monotonic() < deadline, "the first build never took the run lock"
            time.sleep(0.5)
        second = athena_stack.run_task(check=False, name="dbt-second")
    finally:
        athena_stack.standin.release("holder")
        output, _ = first.communicate(timeout=900)
    assert second.returncode != 0
    assert "another dbt run holds the run lock" in second.stdout
    assert first.returncode == 0, output[-4000:]
    assert not lock_exists(athena_stack), "the first build gives the lock back"
    slots = athena_stack.read("stg_freewheel__slots")
    keys = [(r["transaction_id"], r["slot_id"]) for r in slots]
    assert len(keys) == len(set(keys)), "a slot appears twice"
