"""The consent snapshot equals a naive reduction of the events, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from datalease.consent.ledger import ConsentLedger, NewConsentEvent
from datalease.consent.snapshot import consent_snapshot
from datalease.store import make_engine, upgrade
from datalease.store.arrow_transport import SNAPSHOT_SCHEMA
from datalease.store.consent_events import ConsentEventStore

T0 = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
KEYS = ("share_with_partners", "share.posts", "purpose.train_ai_system", "block_partner.acme-labs_2")
Settings = dict[tuple[int, str], bool]


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def as_dict(table: pa.Table, users: set[int] | None = None) -> Settings:
    assert table.schema == SNAPSHOT_SCHEMA
    rows = table.to_pylist()
    result = {(r["user_id"], r["key"]): r["value"] for r in rows if users is None or r["user_id"] in users}
    assert len(result) == len([r for r in rows if users is None or r["user_id"] in users]), "duplicate rows"
    return result


def naive(events: list[tuple[int, str, bool, datetime]], at: datetime) -> Settings:
    """Per (user, key): the value of the event with the greatest (at, recording order), at <= T."""
    best: dict[tuple[int, str], tuple[datetime, int, bool]] = {}
    for order, (user, key, value, when) in enumerate(events):
        if when <= at and ((user, key) not in best or (when, order) > best[(user, key)][:2]):
            best[(user, key)] = (when, order, value)
    return {slot: value for slot, (_, _, value) in best.items()}


EVENTS = st.lists(
    st.tuples(
        st.integers(0, 3),  # user (offset per example)
        st.sampled_from(KEYS),
        st.booleans(),
        st.integers(0, 12),  # minute: few distinct values, so ties on `at` are common
        st.booleans(),  # recorded through record_many (True) or record (False)
    ),
    max_size=24,
)
_example = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=EVENTS, probes=st.lists(st.integers(-1, 13), min_size=1, max_size=4))
def test_snapshot_equals_naive_reduction(
    engine: Engine, history: list[tuple[int, str, bool, int, bool]], probes: list[int]
) -> None:
    """Random histories with backdated events and ties; every example uses its own users."""
    base = 1000 * (next(_example) + 1)
    ledger = ConsentLedger(engine)
    recorded: list[tuple[int, str, bool, datetime]] = []
    for bulk, group in itertools.groupby(history, key=lambda event: event[4]):
        batch = [(base + user, key, value, minutes(minute)) for user, key, value, minute, _ in group]
        if bulk:
            ledger.record_many([NewConsentEvent(u, k, v, at=a, source="import") for u, k, v, a in batch])
        else:
            for user, key, value, at in batch:
                ledger.record(user, key, value, at=at)
        recorded.extend(batch)
    users = {base + user for user in range(4)}
    for probe in probes:
        at = minutes(probe)
        snapshot = consent_snapshot(engine, at)
        assert snapshot.at == at
        assert snapshot.watermark_seq == ledger.head()[0]
        assert as_dict(snapshot.table, users) == naive(recorded, at)
        for user in users:
            state = {(user, k): s.value for k, s in ledger.state_at(user, at).items()}
            assert state == {slot: v for slot, v in naive(recorded, at).items() if slot[0] == user}
    # after every event: the consent_current fast path and the as-of path agree
    late = minutes(13)
    fast = consent_snapshot(engine, late, strategy="current")
    slow = consent_snapshot(engine, late, strategy="as_of")
    assert (fast.strategy, slow.strategy) == ("current", "as_of")
    assert as_dict(fast.table) == as_dict(slow.table)
    assert as_dict(fast.table, users) == naive(recorded, late)


def random_ledger(
    ledger: ConsentLedger, seed: int, events: int = 3000, users: int = 400
) -> list[NewConsentEvent]:
    rng = random.Random(seed)
    generated = [
        NewConsentEvent(
            rng.randrange(1, users),
            rng.choice(KEYS),
            rng.random() < 0.5,
            at=minutes(rng.randrange(0, 600) / 7),
            source=rng.choice(("user", "platform", "import")),
        )
        for _ in range(events)
    ]
    ledger.record_many(generated[: events // 2], batch_size=700)
    ledger.record_many(generated[events // 2 :], batch_size=1000)
    return generated


def test_fast_path_equals_as_of_on_a_larger_ledger(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    generated = random_ledger(ledger, seed=7)
    history = [(e.user_id, e.key, e.value, e.at) for e in generated]
    assert all(at is not None for *_, at in history)
    now = consent_snapshot(engine)
    assert now.strategy == "current"
    as_of_now = consent_snapshot(engine, strategy="as_of")
    expected = naive(history, minutes(10_000))  # type: ignore[arg-type]
    assert as_dict(now.table) == as_dict(as_of_now.table) == expected
    for probe in (0, 17.5, 42.0, 85.0):  # the latest event is at minute 600 / 7 = 85.7
        snapshot = consent_snapshot(engine, minutes(probe))
        assert snapshot.strategy == "as_of"
        assert as_dict(snapshot.table) == naive(history, minutes(probe))  # type: ignore[arg-type]


def test_sqlite_window_query_equals_duckdb_reduction(tmp_path: Path) -> None:
    """SQLite has two as-of methods (the benchmark picks the faster); they must agree."""
    engine = make_engine(f"sqlite:///{tmp_path / 'datalease.db'}")
    upgrade(engine)
    ledger = ConsentLedger(engine)
    random_ledger(ledger, seed=11, events=1500)
    store = ConsentEventStore(engine)
    head = ledger.head()[0]
    with store.read_transaction() as conn:
        for probe in (3.0, 40.0, 90.0):
            window = store.snapshot_as_of(conn, minutes(probe), head, method="window")
            duck = store.snapshot_as_of(conn, minutes(probe), head, method="duckdb")
            assert as_dict(window) == as_dict(duck)
    engine.dispose()


def test_a_future_event_disables_the_fast_path(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    ledger.record(1, "share.posts", True, at=minutes(0))
    future = datetime.now(UTC) + timedelta(days=1)
    ledger.record(1, "share.posts", False, at=future)
    snapshot = consent_snapshot(engine)
    assert snapshot.strategy == "as_of"
    assert as_dict(snapshot.table) == {(1, "share.posts"): True}
    with pytest.raises(ValueError, match=r"^at: the consent_current fast path needs no event after"):
        consent_snapshot(engine, strategy="current")
    later = consent_snapshot(engine, future)
    assert later.strategy == "current"
    assert as_dict(later.table) == {(1, "share.posts"): False}


def test_backdated_event_changes_the_past_and_moves_the_watermark(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    ledger.record(1, "share_with_partners", True, at=minutes(0))
    before = consent_snapshot(engine, minutes(5))
    assert (before.watermark_seq, as_dict(before.table)) == (1, {(1, "share_with_partners"): True})
    ledger.record(1, "share_with_partners", False, at=minutes(3))  # recorded now, effective in the past
    after = consent_snapshot(engine, minutes(5))
    assert (after.watermark_seq, as_dict(after.table)) == (2, {(1, "share_with_partners"): False})
    assert as_dict(consent_snapshot(engine, minutes(2)).table) == {(1, "share_with_partners"): True}


def test_empty_ledger(engine: Engine) -> None:
    for strategy in ("auto", "as_of", "current"):
        snapshot = consent_snapshot(engine, minutes(0), strategy=strategy)
        assert snapshot.table.num_rows == 0
        assert snapshot.table.schema == SNAPSHOT_SCHEMA
        assert snapshot.watermark_seq == 0
    assert consent_snapshot(engine).at.tzinfo == UTC


def test_extreme_user_ids(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    largest = 2**63 - 1
    ledger.record(0, "share.posts", True, at=minutes(0))
    ledger.record(largest, "share.posts", False, at=minutes(0))
    ledger.record(largest, "block_partner.acme", True, at=minutes(1))
    expected = {
        (0, "share.posts"): True,
        (largest, "share.posts"): False,
        (largest, "block_partner.acme"): True,
    }
    for strategy in ("current", "as_of"):
        snapshot = consent_snapshot(engine, minutes(5), strategy=strategy)
        assert as_dict(snapshot.table) == expected
    state = {key: setting.value for key, setting in ledger.state_at(largest).items()}
    assert state == {"share.posts": False, "block_partner.acme": True}
