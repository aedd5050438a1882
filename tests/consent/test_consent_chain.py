"""The pure hash chain: canonical encoding and sha256 links."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from datalease.consent.chain import (
    GENESIS_HASH,
    ConsentEvent,
    canonical_encoding,
    canonical_time,
    event_hash,
    reference_encoding,
)
from datalease.store.models import parse_utc_text, utc_text

AWARE = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
)


def sample_event(**changes: object) -> ConsentEvent:
    fields: dict[str, object] = {
        "seq": 1,
        "event_id": "3f2b8c1e-0d4a-4e8b-9a61-2f0c5d7e9b13",
        "user_id": 42,
        "key": "share.posts",
        "value": False,
        "at": datetime(2024, 11, 15, 10, 0, tzinfo=UTC),
        "recorded_at": datetime(2024, 11, 15, 10, 0, 0, 1, tzinfo=UTC),
        "source": "user",
        "actor": "user:42",
        "prev_hash": GENESIS_HASH,
        "hash": "",
    }
    fields.update(changes)
    return ConsentEvent(**fields)  # type: ignore[arg-type]


def test_canonical_encoding_is_sorted_compact_json() -> None:
    encoded = canonical_encoding(GENESIS_HASH, sample_event())
    assert encoded == (
        b'{"actor":"user:42","at":"2024-11-15T10:00:00.000000Z",'
        b'"event_id":"3f2b8c1e-0d4a-4e8b-9a61-2f0c5d7e9b13","key":"share.posts",'
        b'"prev_hash":"' + GENESIS_HASH.encode() + b'","recorded_at":"2024-11-15T10:00:00.000001Z",'
        b'"seq":1,"source":"user","user_id":42,"value":false}'
    )
    document = json.loads(encoded)
    assert list(document) == sorted(document)
    assert event_hash(GENESIS_HASH, sample_event()) == hashlib.sha256(encoded).hexdigest()


def test_every_field_and_the_link_change_the_hash() -> None:
    base = event_hash(GENESIS_HASH, sample_event())
    variants = [
        sample_event(seq=2),
        sample_event(event_id="3f2b8c1e-0d4a-4e8b-9a61-2f0c5d7e9b14"),
        sample_event(user_id=43),
        sample_event(key="share.likes"),
        sample_event(value=True),
        sample_event(at=datetime(2024, 11, 15, 10, 0, 0, 1, tzinfo=UTC)),
        sample_event(recorded_at=datetime(2024, 11, 15, 10, 0, 0, 2, tzinfo=UTC)),
        sample_event(source="import"),
        sample_event(actor="support:7"),
    ]
    hashes = {event_hash(GENESIS_HASH, v) for v in variants}
    assert base not in hashes
    assert len(hashes) == len(variants)
    assert event_hash("1" * 64, sample_event()) != base


@given(
    at=AWARE,
    recorded=AWARE,
    actor=st.text(min_size=1, max_size=30),
    user_id=st.integers(0, 2**63 - 1),
    value=st.booleans(),
    seq=st.integers(1, 10**12),
)
def test_fast_encoding_equals_json_dumps(
    at: datetime, recorded: datetime, actor: str, user_id: int, value: bool, seq: int
) -> None:
    event = sample_event(at=at, recorded_at=recorded, actor=actor, user_id=user_id, value=value, seq=seq)
    assert canonical_encoding("ab" * 32, event) == reference_encoding("ab" * 32, event)


@given(AWARE)
def test_canonical_time_is_the_sqlite_storage_form(instant: datetime) -> None:
    text = canonical_time(instant)
    assert text == utc_text(instant)
    assert len(text) == 27
    assert text.endswith("Z")
    assert parse_utc_text(text) == instant


@given(AWARE, AWARE)
def test_canonical_time_sorts_like_time(a: datetime, b: datetime) -> None:
    assert (canonical_time(a) < canonical_time(b)) == (a < b)
