"""The benchmark's Lambda cost: the memory it prices is the worker's in a template, and the
arithmetic holds when done by hand."""

from __future__ import annotations

from pathlib import Path

from benchmarks.lambda_cost import lambda_cost, worker_memory_mb

WORKER = (
    "Resources:\n  W:\n    Type: AWS::Lambda::Function\n    Properties:\n"
    '      FunctionName: !Sub "${P}-ingest-worker"\n      MemorySize: {memory}\n'
    "  Other:\n    Type: AWS::Lambda::Function\n    Properties:\n"
    '      FunctionName: !Sub "${P}-ingest-planner"\n      MemorySize: 128\n'
)


def test_a_literal_memory_size_is_read_as_it_is(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(WORKER.replace("{memory}", "1769"))
    assert worker_memory_mb(template) == 1769


def test_a_memory_size_given_by_a_parameter_is_its_default(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    parameters = "Parameters:\n  Memory:\n    Type: Number\n    Default: 3008\n"
    template.write_text(parameters + WORKER.replace("{memory}", "!Ref Memory"))
    assert worker_memory_mb(template) == 3008


def test_cost_per_tb_by_hand() -> None:
    # 10 GB of CSV at 3,538 MB (2 vCPUs): CPU-bound (30 CPU-s over 2 vCPUs = 15 s > 12 s wall),
    # so 1,500 s per TB
    cost = lambda_cost(wall_seconds=12, cpu_seconds=30, csv_bytes=10 * 10**9, memory_mb=3538)
    assert (cost.vcpus, cost.seconds_per_tb) == (2.0, 1500)
    assert cost.gb_seconds_per_tb == round(1500 * 3538 / 1024)
    assert cost.usd_per_tb == round(1500 * 3538 / 1024 * 0.0000166667, 2)
