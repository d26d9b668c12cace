"""b2p backfill's plan: bounded chunks that cover the range, and the projection check."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from ingest.backfill import (
    MAX_PARTITIONS_PER_STATEMENT,
    check_projection,
    day_sizes,
    plan_chunks,
    projection_start,
)
from ingest.errors import UserError
from ingest.logs.lake import log_key, partition_key

DAY = dt.timedelta(days=1)


def year(size: int = 10) -> dict[dt.date, int]:
    first = dt.date(2025, 1, 1)
    return {first + n * DAY: size for n in range(365)}


def test_chunks_cover_the_range_and_each_stays_under_both_limits() -> None:
    sizes = year()
    chunks = plan_chunks(
        sizes, dt.date(2025, 1, 1), dt.date(2026, 1, 1), max_days=90, max_bytes=500
    )
    assert chunks[0].start == dt.date(2025, 1, 1) and chunks[-1].end == dt.date(2026, 1, 1)
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))
    assert all(c.days <= 90 < MAX_PARTITIONS_PER_STATEMENT for c in chunks)
    # a chunk reads its days and one on each side: 48 days + 2 = 50 x 10 bytes (the first has
    # no day before it in the lake)
    assert all(c.read_bytes <= 500 for c in chunks)
    assert [c.days for c in chunks[:3]] == [49, 48, 48]


def test_the_day_limit_binds_when_bytes_do_not() -> None:
    chunks = plan_chunks(year(), dt.date(2025, 1, 1), dt.date(2026, 1, 1), max_bytes=10**9)
    assert [c.days for c in chunks] == [90, 90, 90, 90, 5]


def test_one_day_over_the_cutoff_is_refused_with_what_to_do() -> None:
    with pytest.raises(UserError, match="raise the workgroup's BytesScannedCutoffPerQuery"):
        plan_chunks(year(1000), dt.date(2025, 1, 1), dt.date(2025, 2, 1), max_bytes=2000)


def test_days_before_the_projection_are_refused_by_name() -> None:
    first = projection_start({"projection.event_date.range": "2025-03-01,NOW"})
    assert first == dt.date(2025, 3, 1)
    with pytest.raises(UserError, match=r"2025-01-01 \.\. 2025-02-28.*ProjectionStartDate"):
        check_projection(year(), first)
    check_projection([dt.date(2025, 3, 1)], first)


def test_day_sizes_come_from_the_lake_layout() -> None:
    """The keys the ingester writes (ingest.logs.lake), not a copy of their layout."""
    midnight = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    sizes = day_sizes(
        [
            (partition_key(midnight, "a"), 5),
            (partition_key(midnight + 3_600_000, "b"), 7),
            (partition_key(midnight + 24 * 3_600_000, "c"), 2),
            (log_key("x", '"etag"'), 100),
        ]
    )
    assert sizes == {dt.date(2025, 1, 1): 12, dt.date(2025, 1, 2): 2}
