"""The digest of the derived consent state, pure: an order-independent checksum of `consent_current`.

The chain head stores, next to the last seq and hash, the sum of a 64-bit hash of every
`consent_current` row:

    h(row)  = fmix64(user_id·P1 + K(key)·P2 + at_us·P3 + (2·seq + value)·P4)        (mod 2^64)
    digest  = Σ h(row) over all rows                                                 (mod 2^64)

`K(key)` is the first 8 bytes of sha256(key) read big-endian; `at_us` the microseconds since
1970-01-01 UTC; `value` 0 or 1; negative numbers are taken in two's complement; `fmix64` is
MurmurHash3's 64-bit finaliser. Each field enters through a bijection, so changing any one field of
any one row changes the digest.

A sum does not depend on row order, so an append updates it as `digest - h(old) + h(new)` without
reading the table, and a reader recomputes it in one vectorised pass over what it read (Arrow's
wrapping uint64 arithmetic: about 20 array operations, no Python per row). It is a checksum, not a
signature: whoever can write the database can also recompute it, which is why `verify` rebuilds the
derived state from the hash-chained events instead of trusting it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

MASK: Final = (1 << 64) - 1
P1: Final = 0x9E3779B97F4A7C15  # odd 64-bit constants (golden ratio, splitmix64, MurmurHash3)
P2: Final = 0xBF58476D1CE4E5B9
P3: Final = 0x94D049BB133111EB
P4: Final = 0xFF51AFD7ED558CCD
_F1: Final = 0xFF51AFD7ED558CCD  # fmix64
_F2: Final = 0xC4CEB9FE1A85EC53
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
VECTOR_MIN: Final = 1_000  # rows from which Arrow beats a Python loop (a kernel call costs ~0.1 ms)
_MICROSECOND: Final = timedelta(microseconds=1)


@functools.lru_cache(maxsize=4096)
def key_hash(key: str) -> int:
    """K(key): the first 8 bytes of sha256(key, UTF-8), big-endian."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def _fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * _F1) & MASK
    k ^= k >> 33
    k = (k * _F2) & MASK
    return k ^ (k >> 33)


def micros(at: datetime | str) -> int:
    """Microseconds since 1970-01-01 UTC of an aware datetime or of canonical/ISO UTC text."""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        raise ValueError(f"{at!r}: expected a timezone-aware time")
    return (when - _EPOCH) // _MICROSECOND


def row_hash(user_id: int, key: str, value: bool, at_us: int, seq: int) -> int:
    """h(row) of one consent_current row (see the module docstring)."""
    mixed = user_id * P1 + key_hash(key) * P2 + at_us * P3 + (2 * seq + int(value)) * P4
    return _fmix64(mixed & MASK)


def _u64(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.cast(array, pa.uint64(), safe=False)  # two's complement for negative values


def _fmix64_arrow(k: pa.ChunkedArray) -> pa.ChunkedArray:
    shift = pa.scalar(33, pa.uint64())
    k = pc.bit_wise_xor(k, pc.shift_right(k, shift))
    k = pc.multiply(k, pa.scalar(_F1, pa.uint64()))  # `multiply` (not _checked) wraps mod 2^64
    k = pc.bit_wise_xor(k, pc.shift_right(k, shift))
    k = pc.multiply(k, pa.scalar(_F2, pa.uint64()))
    return pc.bit_wise_xor(k, pc.shift_right(k, shift))


def table_digest(rows: pa.Table) -> int:
    """The digest of rows with columns user_id (int64), key (string), value (bool or 0/1),
    at (timestamp, microseconds) and seq (int64), computed with Arrow kernels."""
    if rows.num_rows == 0:
        return 0
    keys = pc.unique(rows["key"])
    hashes = pa.array([key_hash(k) for k in keys.to_pylist()], pa.uint64())
    key_part = pc.take(hashes, pc.index_in(rows["key"], value_set=keys))
    at_us = _u64(pc.cast(pc.cast(rows["at"], pa.timestamp("us", tz="UTC")), pa.int64()))
    seq_value = pc.add(
        pc.multiply(_u64(rows["seq"]), pa.scalar(2, pa.uint64())), _u64(pc.cast(rows["value"], pa.uint8()))
    )
    mixed = pc.multiply(_u64(rows["user_id"]), pa.scalar(P1, pa.uint64()))
    for part, prime in ((key_part, P2), (at_us, P3), (seq_value, P4)):
        mixed = pc.add(mixed, pc.multiply(part, pa.scalar(prime, pa.uint64())))
    total = pc.sum(_fmix64_arrow(mixed)).as_py()  # a uint64 sum wraps mod 2^64 too
    return int(total or 0)


def text_rows_digest(rows: Sequence[tuple[int, str, bool, str, int]]) -> int:
    """The digest of rows (user_id, key, value, at as UTC text, seq), as an append has them: a
    Python loop for a few rows, Arrow kernels for a batch."""
    if len(rows) < VECTOR_MIN:
        return sum(row_hash(u, k, bool(v), micros(a), s) for u, k, v, a, s in rows) & MASK
    user_id, key, value, at, seq = zip(*rows, strict=True)
    table = pa.table(
        {
            "user_id": pa.array(user_id, pa.int64()),
            "key": pa.array(key, pa.string()),
            "value": pa.array([bool(v) for v in value], pa.bool_()),
            "at": pa.array(at, pa.string()).cast(pa.timestamp("us", tz="UTC")),
            "seq": pa.array(seq, pa.int64()),
        }
    )
    return table_digest(table)


def add(digest: int, amount: int) -> int:
    return (digest + amount) & MASK


def to_stored(digest: int) -> int:
    """The signed 64-bit integer a BIGINT column holds for an unsigned digest."""
    return digest - (1 << 64) if digest >= 1 << 63 else digest


def from_stored(stored: int) -> int:
    return stored & MASK


def describe(digest: int) -> str:
    return f"{digest:016x}"
