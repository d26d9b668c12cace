"""Samples for tests, made through the `b2p sample` command."""

from __future__ import annotations

from pathlib import Path

from ingest.cli import main as b2p


def field_sample(out: Path, *, days: int = 1, slots_per_hour: int = 40, seed: int = 3) -> Path:
    """A `b2p sample --vocabulary field` delivery in `out`."""
    args = ["--days", str(days), "--slots-per-hour", str(slots_per_hour), "--seed", str(seed)]
    assert b2p(["sample", "--out", str(out), "--vocabulary", "field", *args]) == 0
    return out
