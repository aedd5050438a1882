"""The derived consent state cannot lie: consent_current and the chain head are checked against the
events — by a digest every snapshot recomputes, by verify, and by triggers — on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from datalease.consent.chain import canonical_time
from datalease.consent.digest import VECTOR_MIN, micros, row_hash, table_digest, text_rows_digest
from datalease.consent.ledger import ConsentLedger, NewConsentEvent
from datalease.consent.snapshot import consent_snapshot
from datalease.errors import UserError
from datalease.store.consent_events import ConsentEventStore
from datalease.store.db import alembic_config, head_revision, upgrade

T0 = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
Tamper = Callable[..., None]
VERIFY_HINT = "run `datalease consent verify`"


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def stored_digest(engine: Engine) -> int:
    store = ConsentEventStore(engine)
    with store.read_transaction() as conn:
        return store.head(conn).digest


def digest_of_latest_events(ledger: ConsentLedger, users: range) -> int:
    """The digest consent_current should have, from the events alone (naive reduction)."""
    total = 0
    for user in users:
        latest: dict[str, tuple[datetime, int, bool]] = {}
        for event in ledger.history(user):
            if event.key not in latest or (event.at, event.seq) > latest[event.key][:2]:
                latest[event.key] = (event.at, event.seq, event.value)
        for key, (at, seq, value) in latest.items():
            total += row_hash(user, key, value, micros(at), seq)
    return total % 2**64


# --- the digest itself ------------------------------------------------------------------------


def test_arrow_digest_equals_the_per_row_definition() -> None:
    rng = random.Random(5)
    rows = [
        (0, "share_with_partners", False, datetime(1, 1, 1, tzinfo=UTC), 1),
        (
            2**63 - 1,
            "block_partner.acme-labs_2",
            True,
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            2**62,
        ),
        (
            -5,
            "share.posts",
            True,
            datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            3,
        ),  # as edited by hand
    ] + [
        (
            rng.randrange(2**63),
            rng.choice(("share.posts", "share.likes")),
            rng.random() < 0.5,
            minutes(rng.randrange(10**6)),
            i,
        )
        for i in range(4, 3000)
    ]
    table = pa.table(
        {
            "user_id": pa.array([r[0] for r in rows], pa.int64()),
            "key": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.bool_()),
            "at": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")),
            "seq": pa.array([r[4] for r in rows], pa.int64()),
        }
    )
    expected = sum(row_hash(u, k, v, micros(a), s) for u, k, v, a, s in rows) % 2**64
    assert table_digest(table) == expected
    assert table_digest(table.slice(0, 0)) == 0
    # an append's rows (times as canonical text): Arrow for a batch, a Python loop for a few
    as_text = [(u, k, v, canonical_time(a), s) for u, k, v, a, s in rows]
    assert len(as_text) >= VECTOR_MIN > 10
    assert text_rows_digest(as_text) == expected
    assert text_rows_digest(as_text[:10]) == table_digest(table.slice(0, 10))
    # order does not matter; any one field of any one row does
    assert table_digest(table.take(list(reversed(range(table.num_rows))))) == expected
    user, key, value, at, seq = rows[7]
    base = row_hash(user, key, value, micros(at), seq)
    for changed in (
        row_hash(user + 1, key, value, micros(at), seq),
        row_hash(user, "share.reposts", value, micros(at), seq),
        row_hash(user, key, not value, micros(at), seq),
        row_hash(user, key, value, micros(at) + 1, seq),
        row_hash(user, key, value, micros(at), seq - 1),
    ):
        assert changed != base


# --- appends keep it ----------------------------------------------------------------------------


def test_every_append_keeps_the_digest_of_consent_current(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    store = ConsentEventStore(engine)
    assert stored_digest(engine) == 0
    ledger.record(1, "share.posts", True, at=minutes(5))
    ledger.record(1, "share.posts", False, at=minutes(1))  # backdated: consent_current keeps seq 1
    ledger.record(1, "share.posts", False, at=minutes(5))  # a tie on `at`: the later seq wins
    rng = random.Random(3)
    ledger.record_many(
        [
            NewConsentEvent(
                rng.randrange(1, 40),
                rng.choice(("share.posts", "share_with_partners")),
                rng.random() < 0.5,
                at=minutes(rng.randrange(0, 30)),
            )
            for _ in range(400)
        ],
        batch_size=70,  # later chunks replace, skip and add rows of earlier ones
    )
    expected = digest_of_latest_events(ledger, range(1, 40))
    assert stored_digest(engine) == expected
    with store.read_transaction() as conn:
        assert table_digest(store.current_rows(conn, ledger.head()[0])) == expected
    assert ledger.verify().ok
    assert consent_snapshot(engine, minutes(60)).strategy == "current"  # the check passes


def test_migration_computes_the_digest_of_an_existing_store(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    ledger.record_many([NewConsentEvent(u, "share.posts", u % 3 == 0, at=minutes(u)) for u in range(1, 60)])
    ledger.record(7, "share.posts", True, at=minutes(99))
    expected = digest_of_latest_events(ledger, range(1, 60))
    before = ScriptDirectory.from_config(alembic_config()).get_revision("0007").down_revision
    assert isinstance(before, str)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, before)  # a store as it was before this migration
    assert upgrade(engine) == head_revision()
    assert stored_digest(engine) == expected
    assert ledger.verify().ok
    assert consent_snapshot(engine, minutes(100)).strategy == "current"
    with pytest.raises(DBAPIError, match="consent_current must mirror"), engine.begin() as conn:
        conn.exec_driver_sql("UPDATE consent_current SET value = NOT value WHERE user_id = 7")


# --- edits of the derived rows --------------------------------------------------------------------


def five_events(ledger: ConsentLedger) -> None:
    """consent_current: (1, share.posts) → #2 false at minute 2; (2, share.posts) → #3; (2,
    share_with_partners) → #4. Event 5 is backdated, so it is nobody's current row."""
    ledger.record(1, "share.posts", True, at=minutes(1))
    ledger.record(1, "share.posts", False, at=minutes(2))
    ledger.record(2, "share.posts", True, at=minutes(3))
    ledger.record(2, "share_with_partners", False, at=minutes(4))
    ledger.record(1, "share.posts", True, at=minutes(0))
    assert ledger.verify().ok


@dataclass(frozen=True)
class Edit:
    name: str
    sqlite: str
    postgres: str
    verify_says: str  # in verify's problem
    setting: tuple[int, str] | None  # what verify names (None: an event-level verdict)
    snapshot_says: str  # in the snapshot's refusal
    trigger_says: str  # in the database's refusal while the triggers are on
    head: bool = False  # the as_of snapshot refuses too

    def sql(self, engine: Engine) -> str:
        return self.sqlite if engine.dialect.name == "sqlite" else self.postgres


def same(sql: str) -> tuple[str, str]:
    return sql, sql


EDITS = [
    Edit(
        "value flipped",
        *same("UPDATE consent_current SET value = NOT value WHERE user_id = 1 AND key = 'share.posts'"),
        verify_says="consent_current row of user 1 share.posts does not match its latest event #2: "
        "value true instead of false",
        setting=(1, "share.posts"),
        snapshot_says="rows read from consent_current give digest",
        trigger_says="consent_current must mirror the latest event",
    ),
    Edit(
        "at changed",
        "UPDATE consent_current SET at = '2024-11-15T09:02:00.000001Z' WHERE user_id = 1",
        "UPDATE consent_current SET at = at + interval '1 microsecond' WHERE user_id = 1",
        verify_says="consent_current row of user 1 share.posts does not match its latest event #2: "
        "at 2024-11-15T09:02:00.000001Z instead of 2024-11-15T09:02:00.000000Z",
        setting=(1, "share.posts"),
        snapshot_says="rows read from consent_current give digest",
        trigger_says="consent_current must mirror the latest event",
    ),
    Edit(
        "seq re-pointed to an older event",
        *same(
            "UPDATE consent_current SET (value, at, seq) = (SELECT value, at, seq FROM consent_events "
            "WHERE seq = 1) WHERE user_id = 1 AND key = 'share.posts'"
        ),
        verify_says="consent_current row of user 1 share.posts does not match its latest event #2: "
        "value true instead of false, at 2024-11-15T09:01:00.000000Z instead of "
        "2024-11-15T09:02:00.000000Z, event #1 instead of #2",
        setting=(1, "share.posts"),
        snapshot_says="rows read from consent_current give digest",
        trigger_says="consent_current must mirror the latest event",
    ),
    Edit(
        "row deleted",
        *same("DELETE FROM consent_current WHERE user_id = 2 AND key = 'share_with_partners'"),
        verify_says="consent_current has no row for user 2 share_with_partners, whose latest event is #4, "
        "share_with_partners=false at 2024-11-15T09:04:00.000000Z: a derived row was deleted",
        setting=(2, "share_with_partners"),
        snapshot_says="the 2 rows read from consent_current give digest",
        trigger_says="consent_current is derived from consent_events: DELETE is not allowed",
    ),
    Edit(
        "row inserted",
        *same(
            "INSERT INTO consent_current (user_id, key, value, at, seq) "
            "SELECT 9, 'share.likes', value, at, seq FROM consent_events WHERE seq = 1"
        ),
        verify_says="consent_current has a row for user 9 share.likes (#1, share.likes=true at "
        "2024-11-15T09:01:00.000000Z) but consent_events has no event for that setting",
        setting=(9, "share.likes"),
        snapshot_says="the 4 rows read from consent_current give digest",
        trigger_says="consent_current must mirror the latest event",
    ),
    Edit(
        "head seq changed",
        *same("UPDATE consent_chain_head SET last_seq = 4"),
        verify_says="event 5 is not known to the chain head, which records event 4 as the last one",
        setting=None,
        snapshot_says="consent_chain_head records event #4 as the last one, but the last event in "
        "consent_events is #5",
        trigger_says="consent_chain_head must point at the last event",
        head=True,
    ),
    Edit(
        "head hash changed",
        *same("UPDATE consent_chain_head SET last_hash = (SELECT hash FROM consent_events WHERE seq = 1)"),
        verify_says="event 5 is not the event the chain head recorded as the last one (its hash differs)",
        setting=None,
        snapshot_says="for event #5, but that event's hash is",
        trigger_says="consent_chain_head must point at the last event",
        head=True,
    ),
    Edit(
        "digest changed",
        *same("UPDATE consent_chain_head SET current_digest = current_digest / 2"),
        verify_says="for consent_current, but its 3 rows, which match the events, give",
        setting=None,
        snapshot_says="consent_chain_head records",
        trigger_says="consent_chain_head.current_digest changes only with an append",
    ),
]


@pytest.mark.parametrize("edit", EDITS, ids=[edit.name for edit in EDITS])
def test_an_edit_behind_the_ledgers_back_is_named_and_refused(
    engine: Engine, tamper: Tamper, edit: Edit
) -> None:
    ledger = ConsentLedger(engine)
    five_events(ledger)
    tamper(edit.sql(engine))
    verdict = ledger.verify()
    assert not verdict.ok
    assert verdict.problem is not None
    assert edit.verify_says in verdict.problem
    assert verdict.setting == edit.setting
    assert verdict.checked == 5  # the events themselves are sound
    assert verdict.first_bad_seq == (5 if edit.head else None)
    strategies = ("auto", "current", "as_of") if edit.head else ("auto", "current")
    for strategy in strategies:
        with pytest.raises(UserError) as refused:
            consent_snapshot(engine, minutes(10), strategy=strategy)  # type: ignore[arg-type]
        message = str(refused.value)
        assert message.startswith("the consent state does not match the consent ledger: "), message
        assert edit.snapshot_says in message
        assert message.endswith(VERIFY_HINT)
    if not edit.head:  # computed from the events, an as-of snapshot is unaffected by derived rows
        assert consent_snapshot(engine, minutes(10), strategy="as_of").table.num_rows == 3


TRIGGER_ONLY = [
    Edit(
        "row moved to another setting",
        *same("UPDATE consent_current SET key = 'share.likes' WHERE user_id = 1 AND key = 'share.posts'"),
        verify_says="",
        setting=None,
        snapshot_says="",
        trigger_says="consent_current must mirror the latest event",
    ),
    Edit(
        "head row deleted",
        *same("DELETE FROM consent_chain_head"),
        verify_says="",
        setting=None,
        snapshot_says="",
        trigger_says="consent_chain_head",
    ),
    Edit(
        "head row inserted",
        *same(
            "INSERT INTO consent_chain_head (id, last_seq, last_hash, current_digest) "
            "SELECT 2, last_seq, last_hash, current_digest FROM consent_chain_head"
        ),
        verify_says="",
        setting=None,
        snapshot_says="",
        trigger_says="INSERT is not allowed",
    ),
]


def derived_rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        current = conn.exec_driver_sql("SELECT * FROM consent_current ORDER BY user_id, key").all()
        head = conn.exec_driver_sql("SELECT * FROM consent_chain_head").all()
    return [tuple(row) for row in [*current, *head]]


@pytest.mark.parametrize("edit", EDITS + TRIGGER_ONLY, ids=[edit.name for edit in EDITS + TRIGGER_ONLY])
def test_triggers_refuse_the_edit(engine: Engine, edit: Edit) -> None:
    ledger = ConsentLedger(engine)
    five_events(ledger)
    before = derived_rows(engine)
    with pytest.raises(DBAPIError, match=edit.trigger_says), engine.begin() as conn:
        conn.exec_driver_sql(edit.sql(engine))
    assert derived_rows(engine) == before
    assert ledger.verify().ok
    ledger.record(3, "share.posts", False, at=minutes(6))  # appends still pass the triggers
    assert ledger.verify().ok
