"""revocation/chunks.py: the bulk worker's chunks cover every doomed row once, in order, never more
than the commit bound, cut at bucket ends (a bucket is split only when it alone exceeds the bound);
the sizer keeps each chunk's lock hold near its target."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datalease.revocation.chunks import FIRST_ROWS, GROWTH, ChunkSizer, chunk_end

buckets = st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=16)


def _ends(sizes: list[int]) -> list[int]:
    return list(itertools.accumulate(sizes))


@given(
    sizes=buckets,
    max_rows=st.integers(min_value=1, max_value=500),
    asks=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=8),
)
def test_chunks_cover_every_row_once_within_the_bound_cut_at_buckets(
    sizes: list[int], max_rows: int, asks: list[int]
) -> None:
    ends = _ends(sizes)
    low, chunks = 1, []
    for ask in itertools.cycle(asks):
        if low > ends[-1]:
            break
        high = chunk_end(ends, low, min(ask, max_rows), max_rows)
        chunks.append((low, high))
        low = high + 1
    assert chunks[0][0] == 1 and chunks[-1][1] == ends[-1]
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(chunks))  # contiguous, no overlap
    for low, high in chunks:
        assert 1 <= high - low + 1 <= max_rows
        if high not in ends:  # cut inside a bucket only at the bound
            assert high - low + 1 == max_rows
    if max(sizes) <= max_rows:
        assert all(high in ends for _, high in chunks)


def test_a_chunk_takes_whole_buckets_that_fit_and_at_least_one() -> None:
    ends = [10, 20, 30, 40]
    assert chunk_end(ends, 1, 25, 100) == 20  # two whole buckets fit in 25 rows
    assert chunk_end(ends, 1, 3, 100) == 10  # the first bucket, even if larger than asked
    assert chunk_end(ends, 21, 1_000, 100) == 40
    assert chunk_end(ends, 1, 100, 15) == 15  # the bound splits
    assert chunk_end(ends, 16, 100, 15) == 30  # the rest of a split bucket and the next whole one
    with pytest.raises(ValueError, match="low: expected a row number in 1…40, got 41"):
        chunk_end(ends, 41, 10, 10)


@given(
    max_rows=st.integers(min_value=1, max_value=1_000_000),
    holds=st.lists(
        st.tuples(st.integers(min_value=1, max_value=1_000_000), st.floats(min_value=0, max_value=60)),
        max_size=10,
    ),
)
def test_the_sizer_stays_within_the_bound(max_rows: int, holds: list[tuple[int, float]]) -> None:
    sizer = ChunkSizer(max_rows, 0.5)
    assert sizer.rows == min(max_rows, FIRST_ROWS)
    for rows, held in holds:
        sizer.observe(rows, held)
        assert 1 <= sizer.rows <= max_rows
        assert sizer.rows <= rows * GROWTH


def test_the_sizer_follows_the_measured_rate() -> None:
    sizer = ChunkSizer(1_000_000, 0.5)
    sizer.observe(20_000, 2.0)  # 10,000 rows/s: 0.5 s is 5,000 rows
    assert sizer.rows == 5_000
    sizer.observe(5_000, 0.05)  # far faster: grows, at most GROWTH× a chunk
    assert sizer.rows == 5_000 * GROWTH
    off = ChunkSizer(7, 0)
    off.observe(7, 100.0)
    assert off.rows == 7  # no target: always the row bound
    with pytest.raises(ValueError, match="max_rows: expected at least 1, got 0"):
        ChunkSizer(0, 0.5)
