"""The consent hash chain, pure: the canonical encoding of an event and its sha256 link.

Each event's hash covers its own content *and* the hash of the event before it, so editing,
deleting or reordering any stored event breaks the chain at that point:

    hash = sha256(canonical JSON of {actor, at, event_id, key, prev_hash, recorded_at, seq,
                                     source, user_id, value})

The JSON has sorted keys, no whitespace, ASCII only (`json.dumps(..., sort_keys=True,
separators=(",", ":"))`); times are UTC with microseconds, `2024-11-15T10:00:00.000000Z`; `value` is
`true`/`false`. The first event links to the genesis hash, 64 zeros.

Encoding 2 (events that record what was shown, issue 15): an event with a `surface` (settings_page,
api, import, signal) or a notice is hashed with three more keys and a version marker,

    {actor, at, encoding: 2, event_id, key, notice_locale, notice_sha256, prev_hash, recorded_at, seq,
     source, surface, user_id, value}

(`notice_sha256`/`notice_locale` may be `null`). Events without any of them keep encoding 1 byte for
byte, so every event recorded before keeps verifying; clearing the new fields of an encoding-2 event
changes the encoding it is checked with, and therefore breaks its hash.
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
    notice_sha256: str | None = None  # the notice shown when the choice was made (encoding 2)
    notice_locale: str | None = None  # the locale of the notice text displayed
    surface: str | None = None  # where it was made: settings_page, api, import, signal

    @property
    def encoding(self) -> int:
        return shown_encoding(self.notice_sha256, self.notice_locale, self.surface)


def shown_encoding(notice_sha256: str | None, notice_locale: str | None, surface: str | None) -> int:
    """1 for an event without what-was-shown fields, 2 for one that carries any of them."""
    return 1 if notice_sha256 is None and notice_locale is None and surface is None else 2


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
    """The canonical JSON (encoding 1) from already-formatted times (the fast path for bulk work and
    verify)."""
    return (
        f'{{"actor":{_quote(actor)},"at":"{at_text}","event_id":{_quote(event_id)},'
        f'"key":{_quote(key)},"prev_hash":"{prev_hash}","recorded_at":"{recorded_at_text}",'
        f'"seq":{int(seq)},"source":{_quote(source)},"user_id":{int(user_id)},'
        f'"value":{"true" if value else "false"}}}'
    )


def _nullable(text: str | None) -> str:
    return "null" if text is None else _quote(text)


def canonical_text_v2(
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
    notice_sha256: str | None,
    notice_locale: str | None,
    surface: str | None,
) -> str:
    """The canonical JSON of encoding 2 (with what was shown and where)."""
    return (
        f'{{"actor":{_quote(actor)},"at":"{at_text}","encoding":2,"event_id":{_quote(event_id)},'
        f'"key":{_quote(key)},"notice_locale":{_nullable(notice_locale)},'
        f'"notice_sha256":{_nullable(notice_sha256)},"prev_hash":"{prev_hash}",'
        f'"recorded_at":"{recorded_at_text}","seq":{int(seq)},"source":{_quote(source)},'
        f'"surface":{_nullable(surface)},"user_id":{int(user_id)},'
        f'"value":{"true" if value else "false"}}}'
    )


def row_canonical_text(
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
    notice_sha256: str | None = None,
    notice_locale: str | None = None,
    surface: str | None = None,
) -> str:
    """The canonical JSON in the encoding the event's fields call for (1 without what-was-shown, else 2)."""
    if notice_sha256 is None and notice_locale is None and surface is None:
        return canonical_text(
            prev_hash, seq, event_id, user_id, key, value, at_text, recorded_at_text, source, actor
        )
    return canonical_text_v2(
        prev_hash,
        seq,
        event_id,
        user_id,
        key,
        value,
        at_text,
        recorded_at_text,
        source,
        actor,
        notice_sha256,
        notice_locale,
        surface,
    )


def canonical_encoding(prev_hash: str, event: ChainContent) -> bytes:
    """The exact bytes that are hashed for `event` linked after `prev_hash`."""
    return row_canonical_text(
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
        getattr(event, "notice_sha256", None),
        getattr(event, "notice_locale", None),
        getattr(event, "surface", None),
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
    shown = (
        getattr(event, "notice_sha256", None),
        getattr(event, "notice_locale", None),
        getattr(event, "surface", None),
    )
    if shown_encoding(*shown) == 2:
        document.update(encoding=2, notice_sha256=shown[0], notice_locale=shown[1], surface=shown[2])
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
