"""How many doomed rows the bulk worker deletes in its next chunk: sized by time, cut at buckets.

Each chunk holds the share's lock while it rewrites the files it touches, and a single revocation
to that share waits for the lock meanwhile — so a chunk is sized by the time it holds the lock, not
by a fixed row count: after each chunk the rows per second it achieved under the lock give the rows
the next one may take within `target_s` (growing at most `GROWTH`× a chunk, at most `max_rows`, the
commit-size bound). A chunk ends at a bucket's end: a bucket's files are rewritten whole whatever
share of their rows goes, so splitting a bucket would rewrite it twice for no shorter hold. Only a
bucket holding more doomed rows than `max_rows` is split.

`target_s` ≤ 0 turns the sizing off: every chunk takes `max_rows` rows (still cut at buckets).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

FIRST_ROWS = 20_000  # the first chunk, before any hold was measured
GROWTH = 4  # a chunk takes at most this many times the rows of the one before


@dataclass
class ChunkSizer:
    """Rows for the next chunk, from the lock holds measured so far."""

    max_rows: int
    target_s: float
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise ValueError(f"max_rows: expected at least 1, got {self.max_rows}")
        self.rows = self.max_rows if self.target_s <= 0 else min(self.max_rows, FIRST_ROWS)

    def observe(self, rows: int, held_s: float) -> None:
        """A chunk of `rows` rows held the lock `held_s` seconds."""
        if self.target_s <= 0 or rows <= 0:
            return
        fitting = int(rows * self.target_s / max(held_s, 1e-3))
        self.rows = max(1, min(self.max_rows, fitting, rows * GROWTH))


def chunk_end(bucket_ends: Sequence[int], low: int, rows: int, max_rows: int) -> int:
    """The last row number (1-based, inclusive) of the chunk starting at row `low`.

    `bucket_ends` are the last row numbers of each bucket, ascending (the rows are numbered in
    bucket order; the last one is the total). The chunk takes whole buckets while they fit in
    `rows`, at least one bucket (or its rest), and never more than `max_rows` rows."""
    total = bucket_ends[-1]
    if not 1 <= low <= total:
        raise ValueError(f"low: expected a row number in 1…{total}, got {low}")
    cap = low + max_rows - 1
    first = bucket_ends[bisect.bisect_left(bucket_ends, low)]  # the end of low's bucket
    fitting = bisect.bisect_right(bucket_ends, low + max(rows, 1) - 1) - 1  # whole buckets that fit
    wanted = bucket_ends[fitting] if fitting >= 0 else first
    return min(cap, max(first, wanted))
