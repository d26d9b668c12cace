"""Glue throttles (its API limits are low, and a run's clean-up and catalog reads call it in
bursts): dbt-athena uses the profile's retries as the attempts of every boto3 call, so the
profile must allow more than the two attempts `num_retries: 2` gave."""

from __future__ import annotations

import pytest

from tests.athena_e2e.harness import AthenaStack

pytestmark = pytest.mark.e2e


def throttle_glue(stack: AthenaStack, times: int) -> None:
    stack.standin.inject(
        {
            "service": "glue",
            "operation": "GetTables",  # dbt-athena lists the schema's relations first
            "count": times,
            "code": "ThrottlingException",
            "agent": "dbt-athena",
        }
    )


def test_a_throttled_glue_call_is_retried_by_the_deployed_profile(athena_stack: AthenaStack):
    select = ("run", "--select", "stg_freewheel__sites", "--target", "athena")
    # the control: the old setting gives up after two attempts
    throttle_glue(athena_stack, 3)
    old = athena_stack.dbt_env(B2P_ATHENA_NUM_RETRIES="2", B2P_ATHENA_NUM_BOTO3_RETRIES="2")
    # its own target folder: a changed profile would cost the shared one its partial parse
    failed = athena_stack.dbt(*select, check=False, env=old, name="dbt-retries-control")
    assert failed.returncode != 0 and "ThrottlingException" in failed.stdout
    # the deployed profile rides out the same burst (and what the control left over)
    throttle_glue(athena_stack, 3)
    athena_stack.dbt(*select)
