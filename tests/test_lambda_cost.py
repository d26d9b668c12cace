"""The benchmark's Lambda cost: the memory it prices is the stack's, and the arithmetic holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.lambda_cost import PRICE, lambda_cost, worker_memory_mb
from tests.infra.cfn import load_template, resources_of_type


def test_the_memory_priced_is_the_worker_functions_in_the_template() -> None:
    template = load_template()  # cfn-lint's parser, not the benchmark's
    [worker] = [
        resource
        for resource in resources_of_type(template, "AWS::Lambda::Function").values()
        if "ingest-worker" in str(resource["Properties"]["FunctionName"])
    ]
    parameter = worker["Properties"]["MemorySize"]["Ref"]
    assert worker_memory_mb() == template["Parameters"][parameter]["Default"]


def test_a_literal_memory_size_is_read_as_it_is(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(
        "Resources:\n  W:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        '      FunctionName: !Sub "${P}-ingest-worker"\n      MemorySize: 1769\n'
    )
    assert worker_memory_mb(template) == 1769


def test_cost_per_tb_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("benchmarks.lambda_cost.worker_memory_mb", lambda: 3538)  # 2 vCPUs
    # 10 GB of CSV: CPU-bound (30 CPU-s over 2 vCPUs = 15 s > 12 s wall), so 1,500 s per TB
    cost = lambda_cost(wall_seconds=12, cpu_seconds=30, csv_bytes=10 * 10**9)
    assert (cost.vcpus, cost.seconds_per_tb) == (2.0, 1500)
    assert cost.gb_seconds_per_tb == round(1500 * 3538 / 1024)
    assert cost.usd_per_tb == round(1500 * 3538 / 1024 * 0.0000166667, 2)
    assert PRICE.usd_per_gb_second == 0.0000166667
