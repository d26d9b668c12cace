"""The `trino` target (Trino, Starburst or EMR run by a team itself): the same models, through
the same dispatched macros, on a Hive catalog over the same lake, build the same rows as the
athena target (which test_pipeline_on_athena checks against the ground truth)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.athena_e2e.harness import TRINO_TARGET_CATALOG, AthenaStack
from tests.e2e.ground_truth import GRAINS, as_text, assert_models_equal

pytestmark = pytest.mark.e2e

SCHEMA = "bones2peaches_trino"


def test_the_trino_target_builds_the_same_rows_as_athena(athena_stack: AthenaStack) -> None:
    deployment = athena_stack.deployment
    glue = deployment.client("glue")
    built = {t["Name"] for t in glue.get_tables(DatabaseName=deployment.database)["TableList"]}
    if "stg_freewheel__slots" not in built:
        pytest.skip("no athena build in this session to compare with")
    glue.create_database(
        DatabaseInput={"Name": SCHEMA, "LocationUri": f"s3://{deployment.lake_bucket}/dbt-trino/"}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "B2P_", "DBT_"))}
    env.update(
        B2P_TRINO_HOST=athena_stack.trino.host,
        B2P_TRINO_PORT=str(athena_stack.trino.port),
        B2P_TRINO_CATALOG=TRINO_TARGET_CATALOG,
        B2P_TRINO_SCHEMA=SCHEMA,
        B2P_LAKE_GLUE_DATABASE=deployment.database,
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    command = athena_stack.dbt_command(
        "build", "--target", "trino", "--exclude-resource-type", "unit_test", name="dbt-trino"
    )
    result = subprocess.run(command, env=env, cwd=athena_stack.work, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:]
    athena_rows = {
        model: [{c: as_text(v) for c, v in row.items()} for row in athena_stack.read(model)]
        for model in GRAINS
    }
    assert_models_equal(
        athena_rows,
        lambda model: athena_stack.trino.query(
            f'select * from "{TRINO_TARGET_CATALOG}"."{SCHEMA}"."{model}"'
        ).dicts(),
    )
