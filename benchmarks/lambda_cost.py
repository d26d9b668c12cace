"""What an ingest costs on the stack's worker Lambda, from CPU-seconds and wall time measured here.

The worker's memory comes from the CloudFormation template (its `MemorySize`, or the default of
the parameter it refers to), so a change of the stack's setting changes the figure. Lambda bills
duration × memory (GB-seconds, 1 GB = 1,024 MB) whatever the CPU does, and gives CPU in
proportion to memory: one vCPU's worth per 1,769 MB (AWS: "Lambda allocates CPU power in
proportion to the amount of memory configured ... at 1,769 MB, a function has the equivalent of
one vCPU"). The duration on Lambda is estimated as the longer of the wall time measured here
and the CPU-seconds spread over the function's vCPUs: a lower bound, since Lambda's cores are
not faster than this machine's. Per-request charges ($0.20 per million) are left out: one
request per file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.infra.cfn import TEMPLATE_PATH, load_template, resources_of_type

WORKER_FUNCTION_SUFFIX = "-ingest-worker"


@dataclass(frozen=True)
class LambdaPrice:
    usd_per_gb_second: float
    architecture: str
    as_of: str  # when the price was taken as true


# Lambda's duration price (x86, us-east-1, the first 6 billion GB-seconds of a month)
PRICE = LambdaPrice(0.0000166667, "x86_64", "2026-12-01")
MB_PER_VCPU = 1769
MB_PER_GB = 1024
BYTES_PER_TB = 10**12


def worker_memory_mb(template: Path = TEMPLATE_PATH) -> int:
    """The ingest worker function's memory setting in the stack's template."""
    document = load_template(template)
    for resource in resources_of_type(document, "AWS::Lambda::Function").values():
        properties = resource.get("Properties", {})
        if WORKER_FUNCTION_SUFFIX in str(properties.get("FunctionName", "")):
            memory = properties["MemorySize"]
            if isinstance(memory, dict):
                memory = document["Parameters"][memory["Ref"]]["Default"]
            return int(memory)
    raise LookupError(f"no function named *{WORKER_FUNCTION_SUFFIX} in {template}")


@dataclass(frozen=True)
class LambdaCost:
    memory_mb: int
    vcpus: float
    seconds_per_tb: float  # estimated duration per TB of uncompressed CSV
    gb_seconds_per_tb: float
    usd_per_tb: float


def lambda_cost(
    wall_seconds: float, cpu_seconds: float, csv_bytes: int, memory_mb: int | None = None
) -> LambdaCost:
    """The cost per TB of CSV of a run that took `wall_seconds` and `cpu_seconds` on
    `csv_bytes` here, at `memory_mb` (default: the worker's setting in the template)."""
    memory = memory_mb or worker_memory_mb()
    vcpus = memory / MB_PER_VCPU
    seconds = max(wall_seconds, cpu_seconds / vcpus) * BYTES_PER_TB / csv_bytes
    gb_seconds = seconds * memory / MB_PER_GB
    return LambdaCost(
        memory,
        round(vcpus, 2),
        round(seconds),
        round(gb_seconds),
        round(gb_seconds * PRICE.usd_per_gb_second, 2),
    )
