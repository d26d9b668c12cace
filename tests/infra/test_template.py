"""What the template declares for the parts moto only pretends to create (Glue, Athena, secret,
alarms) and the settings a security review asks about. Expected values come from the project's
own definitions (the log contract, the dimension schemas) or are written out here, never read
back from the template."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ingest.logs.contract import CONTRACT, LINEAGE, PARTITIONS
from ingest.logs.contract_files import glue_type
from tests.infra.cfn import REPO_ROOT, load_template, resources_of_type

# The lake's own column list (the contract, then the lineage): the stack's region is generated
# from it by `make contract`; here the parsed template is held to it.
V4_EVENTS_COLUMNS = [(c.name, glue_type(c.type)) for c in CONTRACT + LINEAGE]
V4_EVENTS_PARTITIONS = [(p.name, p.glue_type) for p in PARTITIONS]

DIMENSION_COLUMNS = {
    "sites": [("site_id", "bigint"), ("site_name", "string")],
    "site_sections": [
        ("site_section_id", "bigint"),
        ("site_section_name", "string"),
        ("site_id", "bigint"),
    ],
    "series": [("series_id", "bigint"), ("series_name", "string")],
}

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def glue_table(template: dict[str, Any], name: str) -> dict[str, Any]:
    tables = [
        t["Properties"]["TableInput"]
        for t in resources_of_type(template, "AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == name
    ]
    assert len(tables) == 1, f"expected one Glue table {name}"
    return tables[0]


def columns(table: dict[str, Any], key: str = "Columns") -> list[tuple[str, str]]:
    source = table["StorageDescriptor"][key] if key == "Columns" else table[key]
    return [(c["Name"], c["Type"]) for c in source]


# ---- catalog


def test_v4_events_columns_are_the_lake_schema(template: dict[str, Any]) -> None:
    table = glue_table(template, "v4_events")
    assert columns(table) == V4_EVENTS_COLUMNS
    assert columns(table, "PartitionKeys") == V4_EVENTS_PARTITIONS
    assert table["StorageDescriptor"]["Location"] == {"Fn::Sub": "s3://${LakeBucket}/v4_events/"}
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert table["TableType"] == "EXTERNAL_TABLE"


def test_v4_events_partitions_are_projected(template: dict[str, Any]) -> None:
    parameters = glue_table(template, "v4_events")["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.event_date.type"] == "date"
    assert parameters["projection.event_date.format"] == "yyyy-MM-dd"
    assert parameters["projection.event_date.range"] == {"Fn::Sub": "${ProjectionStartDate},NOW"}
    assert parameters["projection.event_hour.type"] == "integer"
    assert parameters["projection.event_hour.range"] == "0,23"
    # hours are written as 0..23 without padding: a `digits` setting would make Athena look for 07
    assert "projection.event_hour.digits" not in parameters
    # ${!x} is Fn::Sub's escape for a literal ${x}, which Athena fills in per partition
    assert parameters["storage.location.template"] == {
        "Fn::Sub": "s3://${LakeBucket}/v4_events/event_date=${!event_date}/event_hour=${!event_hour}"
    }


def test_no_crawlers_maintain_partitions(template: dict[str, Any]) -> None:
    assert resources_of_type(template, "AWS::Glue::Crawler") == {}


@pytest.mark.parametrize("entity", ["sites", "site_sections", "series"])
def test_dimension_tables(template: dict[str, Any], entity: str) -> None:
    table = glue_table(template, entity)
    assert columns(table) == DIMENSION_COLUMNS[entity]
    assert table["StorageDescriptor"]["Location"] == {
        "Fn::Sub": f"s3://${{LakeBucket}}/dimensions/{entity}/"
    }
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert "PartitionKeys" not in table


def test_dimension_columns_match_the_snapshot_writer(template: dict[str, Any]) -> None:
    from ingest.names.snapshots import DIMENSION_SCHEMAS

    arrow_to_hive = {"int64": "bigint", "string": "string"}
    for entity, schema in DIMENSION_SCHEMAS.items():
        expected = [(f.name, arrow_to_hive[str(f.type)]) for f in schema]
        assert columns(glue_table(template, entity)) == expected


# ---- storage


@pytest.mark.parametrize("bucket", ["LakeBucket", "AthenaResultsBucket"])
def test_buckets_are_private_and_encrypted_with_the_stack_key(
    template: dict[str, Any], bucket: str
) -> None:
    p = props(template, bucket)
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }


def test_lake_is_versioned_retained_and_expires_rejects(template: dict[str, Any]) -> None:
    resource = template["Resources"]["LakeBucket"]
    assert resource["DeletionPolicy"] == "Retain"
    p = resource["Properties"]
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in p["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-rejects"]["Prefix"] == "_ingest/rejects/"
    assert rules["expire-rejects"]["ExpirationInDays"] == {"Ref": "RejectsRetentionDays"}
    # nothing but rejects may expire: the lake's events, dimensions and logs are kept
    expiring = [r for r in rules.values() if "ExpirationInDays" in r]
    assert [r["Id"] for r in expiring] == ["expire-rejects"]


def test_athena_results_expire(template: dict[str, Any]) -> None:
    (rule,) = props(template, "AthenaResultsBucket")["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "AthenaResultsRetentionDays"}
    assert "Prefix" not in rule


def test_key_rotates(template: dict[str, Any]) -> None:
    assert props(template, "DataKey")["EnableKeyRotation"] is True


# ---- Athena


def test_workgroup_enforces_encrypted_results_engine_3_and_a_scan_cutoff(
    template: dict[str, Any],
) -> None:
    config = props(template, "AthenaWorkGroup")["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "BytesScannedCutoffPerQuery"}
    assert config["ResultConfiguration"] == {
        "OutputLocation": {"Fn::Sub": "s3://${AthenaResultsBucket}/"},
        "EncryptionConfiguration": {
            "EncryptionOption": "SSE_KMS",
            "KmsKey": {"Fn::GetAtt": ["DataKey", "Arn"]},
        },
    }


def test_dbt_workgroup_keeps_a_scan_cutoff_without_overriding_table_locations(
    template: dict[str, Any],
) -> None:
    """An enforced OutputLocation makes Athena put every CTAS under the results bucket
    (tables/<query-id>/, which expires) and dbt-athena drop external_location; dbt's workgroup
    must leave the location to dbt (s3_data_dir, the lake's dbt/ prefix) and keep the cutoff.
    tests/athena_e2e checks where the tables really land."""
    config = props(template, "DbtWorkGroup")["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is False
    assert config["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "BytesScannedCutoffPerQuery"}
    assert config["ResultConfiguration"]["OutputLocation"] == {
        "Fn::Sub": "s3://${AthenaResultsBucket}/dbt/"
    }


def test_no_lifecycle_rule_expires_the_dbt_tables(template: dict[str, Any]) -> None:
    """dbt writes its tables under the lake's dbt/ (B2P_ATHENA_S3_DATA_DIR); no rule of that
    bucket may expire current objects there (noncurrent versions may expire)."""
    env = {e["Name"]: e["Value"] for e in container(template, "DbtTaskDefinition")["Environment"]}
    assert env["B2P_ATHENA_S3_DATA_DIR"] == {"Fn::Sub": "s3://${LakeBucket}/dbt/"}
    for rule in props(template, "LakeBucket")["LifecycleConfiguration"]["Rules"]:
        prefix = rule.get("Prefix", "")
        if "ExpirationInDays" in rule or "ExpirationDate" in rule:
            assert prefix and not "dbt/".startswith(prefix), rule["Id"]


# ---- ingest fan-out


def test_queue_redrives_to_the_dead_letter_queue(template: dict[str, Any]) -> None:
    queue = props(template, "IngestQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]
    }
    worker_timeout = props(template, "WorkerFunction")["Timeout"]
    # AWS's rule for a Lambda-consumed queue: visibility at least six function timeouts
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout


def test_worker_is_an_image_sized_for_one_large_file(template: dict[str, Any]) -> None:
    worker = props(template, "WorkerFunction")
    assert worker["PackageType"] == "Image"
    assert worker["ImageConfig"]["Command"] == ["ingest.aws_lambda.worker_handler"]
    assert worker["Timeout"] == 900
    assert worker["MemorySize"] == {"Ref": "WorkerMemoryMb"}
    assert worker["ReservedConcurrentExecutions"] == {"Ref": "WorkerReservedConcurrency"}
    trigger = props(template, "WorkerQueueTrigger")
    assert trigger["BatchSize"] == 1
    assert trigger["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerReservedConcurrency"}


def test_planner_runs_on_its_schedule(template: dict[str, Any]) -> None:
    assert props(template, "PlannerFunction")["ImageConfig"]["Command"] == [
        "ingest.aws_lambda.planner_handler"
    ]
    rule = props(template, "PlannerScheduleRule")
    assert rule["ScheduleExpression"] == {"Ref": "IngestSchedule"}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["PlannerFunction", "Arn"]}


# ---- dbt and dimensions


def container(template: dict[str, Any], task: str) -> dict[str, Any]:
    (definition,) = props(template, task)["ContainerDefinitions"]
    return definition


def test_dbt_task_builds_on_athena_with_the_stack_s_settings(template: dict[str, Any]) -> None:
    dbt = container(template, "DbtTaskDefinition")
    assert [*dbt["EntryPoint"], *dbt["Command"]] == [
        "/bin/sh",
        "/app/scheduled_dbt.sh",
        "build",
        "--target",
        "athena",
    ]
    # the image puts the script where the task runs it (WORKDIR /app)
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "COPY infra/scheduled_dbt.sh ./" in dockerfile
    env = {e["Name"]: e["Value"] for e in dbt["Environment"]}
    assert env == {
        "B2P_ATHENA_REGION": {"Ref": "AWS::Region"},
        "B2P_ATHENA_S3_STAGING_DIR": {"Fn::Sub": "s3://${AthenaResultsBucket}/dbt/"},
        "B2P_ATHENA_S3_DATA_DIR": {"Fn::Sub": "s3://${LakeBucket}/dbt/"},
        "B2P_ATHENA_CATALOG": "awsdatacatalog",
        "B2P_ATHENA_SCHEMA": {"Ref": "GlueDatabase"},
        "B2P_LAKE_GLUE_DATABASE": {"Ref": "GlueDatabase"},
        "B2P_ATHENA_WORKGROUP": {"Ref": "DbtWorkGroup"},
    }
    assert props(template, "DbtTaskDefinition")["TaskRoleArn"] == {
        "Fn::GetAtt": ["DbtTaskRole", "Arn"]
    }


def write_fake_dbt(folder: Path, freshness: int = 0, build: int = 0) -> None:
    """A `dbt` in `folder` that logs its arguments to folder/calls and exits with the given
    status per subcommand (`source` freshness, anything else)."""
    fake = folder / "dbt"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {folder / "calls"}\n'
        f'if [ "$1" = source ]; then exit {freshness}; fi\n'
        f"exit {build}\n"
    )
    fake.chmod(0o755)


@pytest.fixture
def fake_dbt(tmp_path: Path) -> Path:
    """The folder of a fake `dbt` that succeeds (write_fake_dbt), for run_scheduled_dbt."""
    write_fake_dbt(tmp_path)
    return tmp_path


def run_scheduled_dbt(folder: Path, arguments: list[str]) -> tuple[int, list[str]]:
    """infra/scheduled_dbt.sh with `arguments`, run by /bin/sh with the fake dbt of `folder`
    (write_fake_dbt) first on PATH: its exit status and the dbt calls it made."""
    calls = folder / "calls"
    calls.unlink(missing_ok=True)
    script = REPO_ROOT / "infra" / "scheduled_dbt.sh"
    env = {"PATH": f"{folder}:/usr/bin:/bin"}
    result = subprocess.run(["/bin/sh", str(script), *arguments], env=env, check=False)
    return result.returncode, calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.parametrize(
    ("freshness", "build", "failed"),
    [(0, 0, False), (1, 0, True), (0, 1, True), (1, 1, True)],
)
def test_dbt_task_builds_even_when_the_source_is_stale_and_fails_if_either_failed(
    tmp_path: Path, freshness: int, build: int, failed: bool
) -> None:
    write_fake_dbt(tmp_path, freshness, build)
    command = container(load_template(), "DbtTaskDefinition")["Command"]
    code, calls = run_scheduled_dbt(tmp_path, command)
    assert calls == [
        "source freshness --target athena",
        "build --exclude-resource-type unit_test --target athena",
    ]
    assert (code != 0) == failed


def test_every_data_test_runs_on_every_day_weekly_without_unit_tests(
    template: dict[str, Any], fake_dbt: Path
) -> None:
    """Scheduled builds test only the days they rebuilt (test_scope window); a weekly run of the
    same task, through its script, tests the whole history."""
    rule = props(template, "DbtFullTestScheduleRule")
    assert rule["ScheduleExpression"] == {"Ref": "DbtFullTestSchedule"}
    (target,) = rule["Targets"]
    assert target["EcsParameters"]["TaskDefinitionArn"] == {"Ref": "DbtTaskDefinition"}
    (override,) = json.loads(target["Input"])["containerOverrides"]
    assert override["name"] == container(template, "DbtTaskDefinition")["Name"]
    code, calls = run_scheduled_dbt(fake_dbt, override["command"])
    assert code == 0
    assert calls == [
        "test --exclude-resource-type unit_test --vars {test_scope: full} --target athena"
    ]


def test_the_task_script_refuses_an_unknown_command(fake_dbt: Path) -> None:
    assert run_scheduled_dbt(fake_dbt, ["--target", "athena"])[0] == 2


def test_dimensions_task_gets_the_secret_by_arn_never_by_value(template: dict[str, Any]) -> None:
    task = container(template, "DimensionsTaskDefinition")
    assert [*task["EntryPoint"], *task["Command"]] == [
        "b2p",
        "dimensions",
        "--lake",
        {"Fn::Sub": "s3://${LakeBucket}"},
        "--secret-id",
        {"Ref": "FreeWheelApiSecret"},
    ]
    assert "Secrets" not in task and "Environment" not in task


def test_secret_value_is_not_in_the_template(template: dict[str, Any]) -> None:
    secret = props(template, "FreeWheelApiSecret")
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret
    assert secret["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}


@pytest.mark.parametrize(
    ("rule", "task"),
    [
        ("DbtScheduleRule", "DbtTaskDefinition"),
        ("DimensionsScheduleRule", "DimensionsTaskDefinition"),
    ],
)
def test_tasks_run_on_fargate_on_a_schedule(template: dict[str, Any], rule: str, task: str) -> None:
    (target,) = props(template, rule)["Targets"]
    assert target["EcsParameters"]["TaskDefinitionArn"] == {"Ref": task}
    assert target["EcsParameters"]["LaunchType"] == "FARGATE"
    assert "ScheduleExpression" in props(template, rule)


# ---- alarms


def alarm_metrics(template: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        logical_id: (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for logical_id, a in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
    }


def test_alarms_watch_dlq_errors_tasks_and_freshness(template: dict[str, Any]) -> None:
    assert alarm_metrics(template) == {
        "IngestDeadLetterQueueAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "PlannerErrorsAlarm": ("AWS/Lambda", "Errors"),
        "WorkerErrorsAlarm": ("AWS/Lambda", "Errors"),
        "LakeFreshnessAlarm": ("AWS/S3", "PutRequests"),
        "DbtScheduleFailedAlarm": ("AWS/Events", "FailedInvocations"),
        "DimensionsScheduleFailedAlarm": ("AWS/Events", "FailedInvocations"),
    }
    for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_freshness_alarm_counts_writes_under_v4_events(template: dict[str, Any]) -> None:
    alarm = props(template, "LakeFreshnessAlarm")
    filter_id = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["FilterId"]
    (metrics,) = [
        m for m in props(template, "LakeBucket")["MetricsConfigurations"] if m["Id"] == filter_id
    ]
    assert metrics["Prefix"] == "v4_events/"
    assert alarm["EvaluationPeriods"] == {"Ref": "FreshnessHours"}
    assert alarm["Period"] == 3600
    # no writes means no datapoints at all: silence must count as stale
    assert alarm["TreatMissingData"] == "breaching"


def test_failed_task_runs_reach_the_alert_topic(template: dict[str, Any]) -> None:
    rule = props(template, "TaskFailedRule")
    detail = rule["EventPattern"]["detail"]
    assert detail["lastStatus"] == ["STOPPED"]
    assert {"containers": {"exitCode": [{"anything-but": 0}]}} in detail["$or"]
    assert rule["Targets"][0]["Arn"] == {"Ref": "AlertTopic"}


def test_template_fits_an_inline_deploy() -> None:
    # Above 51,200 bytes CloudFormation only takes a template from S3, and `aws cloudformation
    # deploy` would then need an --s3-bucket: the README's one command would break.
    from tests.infra.cfn import TEMPLATE_PATH

    assert len(TEMPLATE_PATH.read_bytes()) <= 51_200
