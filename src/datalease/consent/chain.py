"""The consent hash chain, pure: the canonical encoding of an event and its sha256 link.

Each event's hash covers its own content *and* the hash of the event before it, so editing,
deleting or reordering any stored event breaks the chain at that point:

    hash = sha256(canonical JSON of {actor, at, event_id, key, prev_hash, recorded_at, seq,
                                     source, user_id, value})

The JSON has sorted keys, no whitespace, ASCII only (`json.dumps(..., sort_keys=True,
separators=(",", ":"))`); times are UTC with microseconds, `2024-11-15T10:00:00.000000Z`; `value` is
`true`/`false`. The first event links to the genesis hash, 64 zeros.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

GENESIS_HASH: Final = "0" * 64

# json.encoder's C-accelerated string quoting; identical to what json.dumps(ensure_ascii=True) emits.
_quote = json.encoder.encode_basestring_ascii


class ChainContent(Protocol):
    """What a hash covers besides the previous hash."""

    @property
    def seq(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def user_id(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> bool: ...
    @property
    def at(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def source(self) -> str: ...
    @property
    def actor(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One stored setting change, as the ledger returns it."""

    seq: int
    event_id: str
    user_id: int
    key: str
    value: bool
    at: datetime
    recorded_at: datetime
    source: str
    actor: str
    prev_hash: str
    hash: str


def canonical_time(value: datetime) -> str:
    """`2024-11-15T10:00:00.000000Z`: UTC, microseconds, fixed width (years 1-9999)."""
    if value.tzinfo is None:
        raise ValueError(f"{value!r}: expected a timezone-aware datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_text(
    prev_hash: str,
    seq: int,
    event_id: str,
    user_id: int,
    key: str,
    value: bool,
    at_text: str,
    recorded_at_text: str,
    source: str,
    actor: str,
) -> str:
    """The canonical JSON from already-formatted times (the fast path for bulk work and verify)."""
    return (
        f'{{"actor":{_quote(actor)},"at":"{at_text}","event_id":{_quote(event_id)},'
        f'"key":{_quote(key)},"prev_hash":"{prev_hash}","recorded_at":"{recorded_at_text}",'
        f'"seq":{int(seq)},"source":{_quote(source)},"user_id":{int(user_id)},'
        f'"value":{"true" if value else "false"}}}'
    )


def canonical_encoding(prev_hash: str, event: ChainContent) -> bytes:
    """The exact bytes that are hashed for `event` linked after `prev_hash`."""
    return canonical_text(
        prev_hash,
        event.seq,
        event.event_id,
        event.user_id,
        event.key,
        event.value,
        canonical_time(event.at),
        canonical_time(event.recorded_at),
        event.source,
        event.actor,
    ).encode("ascii")


def hash_text(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def event_hash(prev_hash: str, event: ChainContent) -> str:
    """sha256 hex of the canonical encoding of `event` after `prev_hash`."""
    return hashlib.sha256(canonical_encoding(prev_hash, event)).hexdigest()


def reference_encoding(prev_hash: str, event: ChainContent) -> bytes:
    """The same encoding built with `json.dumps`, kept as the readable definition (and tested)."""
    document = {
        "actor": event.actor,
        "at": canonical_time(event.at),
        "event_id": event.event_id,
        "key": event.key,
        "prev_hash": prev_hash,
        "recorded_at": canonical_time(event.recorded_at),
        "seq": event.seq,
        "source": event.source,
        "user_id": event.user_id,
        "value": event.value,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
