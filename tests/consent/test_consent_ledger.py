"""The consent ledger on real SQLite and PostgreSQL: append, as-of, idempotency, errors, verify,
concurrency."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from datalease.consent.chain import GENESIS_HASH, event_hash
from datalease.consent.inputs import ConsentError
from datalease.consent.ledger import ConsentLedger, NewConsentEvent, SettingState
from datalease.consent.verify import _RangeWorker
from datalease.store import make_engine

T0 = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
Tamper = Callable[..., None]


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def values(states: dict[str, SettingState]) -> dict[str, bool]:
    return {key: state.value for key, state in states.items()}


def test_record_appends_a_linked_event(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    first = ledger.record(7, "share_with_partners", False, at=minutes(0))
    second = ledger.record(7, "share.posts", True, at=minutes(1), source="platform", actor="support:12")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.hash == event_hash(GENESIS_HASH, first)
    assert second.hash == event_hash(first.hash, second)
    assert first.actor == "user:7"
    assert (second.source, second.actor) == ("platform", "support:12")
    assert first.at == minutes(0)
    assert first.recorded_at.tzinfo == UTC
    assert ledger.history(7) == [first, second]
    assert ledger.history(8) == []
    assert ledger.head() == (2, second.hash)
    assert ledger.verify().ok


def test_default_at_is_now(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    before = datetime.now(UTC)
    event = ledger.record(1, "share_with_partners", True)
    after = datetime.now(UTC)
    assert before <= event.at <= after
    assert event.at == event.recorded_at
    assert ledger.history(1) == [event]


def test_state_as_of_with_backdated_events_and_ties(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    ledger.record(1, "share_with_partners", True, at=minutes(10))
    ledger.record(1, "share.posts", False, at=minutes(20))
    # recorded later, effective earlier (a backdated --at): it changes the past, not the present
    ledger.record(1, "share_with_partners", False, at=minutes(5))
    # a tie on `at`: the later seq wins
    ledger.record(1, "share.posts", True, at=minutes(20))
    ledger.record(2, "share.likes", True, at=minutes(0))

    assert ledger.state_at(1, minutes(4)) == {}
    assert values(ledger.state_at(1, minutes(5))) == {"share_with_partners": False}
    assert values(ledger.state_at(1, minutes(9.99))) == {"share_with_partners": False}
    assert values(ledger.state_at(1, minutes(10))) == {"share_with_partners": True}
    assert values(ledger.state_at(1, minutes(20))) == {"share_with_partners": True, "share.posts": True}
    now = ledger.state_at(1)
    assert values(now) == {"share_with_partners": True, "share.posts": True}
    assert now["share.posts"] == SettingState(True, minutes(20), "user", "user:1", 4)
    assert now["share_with_partners"].seq == 1
    assert values(ledger.state_at(2, minutes(0))) == {"share.likes": True}
    assert ledger.verify().ok


def test_event_id_makes_record_idempotent(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    event_id = str(uuid.uuid4())
    first = ledger.record(3, "share.posts", False, at=minutes(1), event_id=event_id)
    again = ledger.record(3, "share.posts", False, at=minutes(1), event_id=event_id.upper())
    retry_without_at = ledger.record(3, "share.posts", False, event_id=event_id)
    assert again == first
    assert retry_without_at == first
    assert ledger.count() == 1

    with pytest.raises(
        ConsentError, match=r"^event_id: .*already recorded as event 1 with different content"
    ):
        ledger.record(3, "share.posts", True, at=minutes(1), event_id=event_id)
    with pytest.raises(ConsentError, match=r"^event_id: "):
        ledger.record(3, "share.posts", False, at=minutes(2), event_id=event_id)
    assert ledger.count() == 1
    assert ledger.verify().ok


@pytest.mark.parametrize(
    ("arguments", "field", "expected"),
    [
        ({"key": "share.everything"}, "key", "expected share.<category>"),
        ({"key": "nonsense"}, "key", "expected one of share_with_partners"),
        ({"key": 5}, "key", "expected a setting key"),
        ({"value": "maybe"}, "value", "expected true or false"),
        ({"value": 1}, "value", "expected true or false"),
        ({"value": None}, "value", "expected true or false"),
        ({"source": "admin"}, "source", "expected one of user, platform, import"),
        ({"user_id": -1}, "user_id", "expected a non-negative whole number"),
        ({"user_id": "12"}, "user_id", "expected a non-negative whole number"),
        ({"user_id": 2**63}, "user_id", "expected a non-negative whole number"),
        ({"at": "last tuesday"}, "at", "expected an ISO-8601 date"),
        ({"at": 1731661200}, "at", "expected a date-time"),
        ({"actor": ""}, "actor", "expected a non-empty text"),
        ({"actor": "x" * 201}, "actor", "at most 200 characters"),
        ({"event_id": "not-a-uuid"}, "event_id", "expected a UUID"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    engine: Engine, arguments: dict[str, object], field: str, expected: str
) -> None:
    ledger = ConsentLedger(engine)
    call: dict[str, object] = {"user_id": 1, "key": "share.posts", "value": True, **arguments}
    user_id, key, value = call.pop("user_id"), call.pop("key"), call.pop("value")
    with pytest.raises(ConsentError) as caught:
        ledger.record(user_id, key, value, **call)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert expected in str(caught.value)
    assert ledger.count() == 0
    assert ledger.head() == (0, GENESIS_HASH)


def test_at_accepts_iso_text_and_other_offsets(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    event = ledger.record(1, "share.posts", True, at="2024-11-15T10:00:00+01:00")  # type: ignore[arg-type]
    assert event.at == T0
    assert ledger.history(1)[0].at == T0


def test_record_many_is_one_transaction(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    ledger.record(1, "share_with_partners", True, at=minutes(0))
    known = str(uuid.uuid4())
    result = ledger.record_many(
        [
            NewConsentEvent(2, "share.posts", False, at=minutes(1), source="import", actor="migration"),
            NewConsentEvent(3, "share.likes", True, at=minutes(2), event_id=known),
            NewConsentEvent(3, "share.likes", True, at=minutes(2), event_id=known),  # duplicate: skipped
            NewConsentEvent(2, "share.posts", True, at=minutes(0)),  # backdated
        ],
        batch_size=2,
    )
    assert (result.appended, result.already_present, result.first_seq, result.last_seq) == (3, 1, 2, 4)
    assert values(ledger.state_at(2)) == {"share.posts": False}
    assert [e.seq for e in ledger.history(2)] == [2, 4]
    assert ledger.verify().ok

    again = ledger.record_many([NewConsentEvent(3, "share.likes", True, at=minutes(2), event_id=known)])
    assert (again.appended, again.already_present, again.last_seq) == (0, 1, None)

    with pytest.raises(ConsentError, match=r"^events\[2\]\.key: 'share\.nope'") as caught:
        ledger.record_many(
            [
                NewConsentEvent(5, "share.posts", True),
                NewConsentEvent(5, "share.likes", True),
                NewConsentEvent(5, "share.nope", True),
            ],
            batch_size=2,  # the first batch is already inserted when the bad event is found
        )
    assert (caught.value.field, caught.value.index) == ("key", 2)
    with pytest.raises(ConsentError, match=r"^events\[1\]\.event_id: .* different content"):
        ledger.record_many(
            [
                NewConsentEvent(6, "share.posts", True),
                NewConsentEvent(3, "share.likes", False, event_id=known),
            ]
        )
    with pytest.raises(ConsentError, match=r"^events\[1\]\.event_id: .* appears twice"):
        twice = str(uuid.uuid4())
        ledger.record_many(
            [
                NewConsentEvent(6, "share.posts", True, event_id=twice),
                NewConsentEvent(6, "share.posts", False, event_id=twice),
            ]
        )
    assert ledger.count() == 4
    assert ledger.history(5) == []
    assert ledger.verify().ok


def test_record_many_matches_record(tmp_path: object, engine: Engine) -> None:
    """Bulk and single appends build the same state and a valid chain."""
    ledger = ConsentLedger(engine)
    events = [
        NewConsentEvent(u, k, (u + i) % 3 == 0, at=minutes((i * 7) % 11))
        for i, (u, k) in enumerate(
            (u, k) for u in range(1, 6) for k in ("share.posts", "share_with_partners")
        )
    ]
    ledger.record_many(events[:5])
    for event in events[5:]:
        ledger.record(event.user_id, event.key, event.value, at=event.at)
    ledger.record_many(events[:3])  # no ids: appended again
    assert ledger.count() == len(events) + 3
    assert ledger.verify().ok
    for user in range(1, 6):
        mine = [(e.at, i, e) for i, e in enumerate(events + events[:3]) if e.user_id == user]
        expected: dict[str, bool] = {}
        for _, _, e in sorted(mine, key=lambda t: (t[0], t[1])):
            expected[e.key] = e.value
        assert values(ledger.state_at(user)) == expected


# --- tampering behind the code's back ---------------------------------------------------------


def seven_events(ledger: ConsentLedger) -> None:
    """Seven events; seq 1, 2, 4, 5 and 7 are superseded, so no consent_current row points at them
    (their rows can be tampered with without tripping the consent_current foreign key)."""
    for minute in (1, 2, 3):
        ledger.record(1, "share.posts", minute % 2 == 0, at=minutes(minute))
    for minute in (4, 5, 9):
        ledger.record(2, "share.posts", minute % 2 == 0, at=minutes(minute))
    ledger.record(1, "share.posts", True, at=minutes(0))  # backdated
    assert ledger.verify().ok


def test_verify_detects_an_edit(engine: Engine, tamper: Tamper) -> None:
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    tamper("UPDATE consent_events SET value = NOT value WHERE seq = 2")
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 2, 1)
    assert result.problem is not None
    assert "event 2 was altered" in result.problem


def test_verify_detects_an_edited_time(engine: Engine, tamper: Tamper) -> None:
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    if engine.dialect.name == "sqlite":
        tamper("UPDATE consent_events SET at = '2024-11-15T09:05:00.000001Z' WHERE seq = 5")
    else:
        tamper("UPDATE consent_events SET at = at + interval '1 microsecond' WHERE seq = 5")
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_verify_detects_a_deletion(engine: Engine, tamper: Tamper) -> None:
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    tamper("DELETE FROM consent_events WHERE seq = 4")
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 4, 3)
    assert result.problem == "event 4 is missing: event 3 is followed by event 5 (events deleted?)"


def test_verify_detects_deletion_at_the_start_and_end(engine: Engine, tamper: Tamper) -> None:
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    tamper("DELETE FROM consent_events WHERE seq = 7")
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 7, 6)
    assert result.problem == (
        "event 7 is missing: the ledger ends at event 6 but its chain head records event 7 "
        "(events deleted at the end, or consent_chain_head edited?)"
    )
    tamper("DELETE FROM consent_events WHERE seq IN (1, 2)")
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert result.problem is not None
    assert result.problem.startswith("events 1 to 2 are missing: the ledger starts at event 3")


def test_verify_detects_deletion_with_renumbering(engine: Engine, tamper: Tamper) -> None:
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    tamper(
        "DELETE FROM consent_events WHERE seq = 4",
        "UPDATE consent_events SET seq = 4 WHERE seq = 5",
    )
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert result.problem is not None
    assert "event 4 does not follow event 3" in result.problem


def test_verify_detects_reordering(engine: Engine, tamper: Tamper) -> None:
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    tamper(
        "UPDATE consent_events SET seq = 1000 WHERE seq = 4",
        "UPDATE consent_events SET seq = 4 WHERE seq = 5",
        "UPDATE consent_events SET seq = 5 WHERE seq = 1000",
    )
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 4, 3)
    assert result.problem is not None
    assert "event 4 does not follow event 3" in result.problem


def test_verify_detects_a_rehashed_edit(engine: Engine, tamper: Tamper) -> None:
    """Someone who edits an event AND recomputes its hash still breaks the next link."""
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    original = ledger.history(1)[1]
    forged = event_hash(original.prev_hash, dataclasses.replace(original, value=not original.value))
    tamper(f"UPDATE consent_events SET value = NOT value, hash = '{forged}' WHERE seq = 2")
    result = ledger.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.problem is not None
    assert "event 3 does not follow event 2" in result.problem


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_appenders_never_fork_the_chain(db_url: str, engine: Engine) -> None:
    """Two writers with their own engines (as two processes would have) append at once."""
    per_writer = 40
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def single_writer(user_id: int) -> None:
        own = make_engine(db_url)
        try:
            ledger = ConsentLedger(own)
            start.wait()
            for i in range(per_writer):
                ledger.record(user_id, "share.posts", i % 2 == 0, at=minutes(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.dispose()

    def bulk_writer() -> None:
        own = make_engine(db_url)
        try:
            ledger = ConsentLedger(own)
            start.wait()
            for i in range(4):
                ledger.record_many(
                    [NewConsentEvent(100 + i, "share.likes", True, at=minutes(j)) for j in range(10)]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [
        threading.Thread(target=single_writer, args=(1,)),
        threading.Thread(target=single_writer, args=(2,)),
        threading.Thread(target=bulk_writer),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    ledger = ConsentLedger(engine)
    total = 2 * per_writer + 40
    assert ledger.count() == total
    assert ledger.head()[0] == total
    verdict = ledger.verify()
    assert verdict.ok, verdict.problem
    assert verdict.checked == total
    assert [e.seq for e in ledger.history(1)] == sorted(e.seq for e in ledger.history(1))
    assert len(ledger.history(1)) == len(ledger.history(2)) == per_writer


def test_parallel_verify_matches_one_stream(engine: Engine, tamper: Tamper) -> None:
    """Split into seq ranges (0, 3] (checked by another process) and (3, 7], verify reaches the
    same verdict as one stream."""
    ledger = ConsentLedger(engine)
    seven_events(ledger)
    helper = _RangeWorker(engine.url.render_as_string(hide_password=False), 0, 3)
    check = helper.result(ledger.store)
    assert not helper.fell_back, "the helper process failed; verify checked its range in-process"
    assert (check.rows, check.first_seq, check.last_seq, check.problem) == (3, 1, 3, None)
    # seq 4 starts the second range: the gap is found while stitching the ranges together
    tamper("DELETE FROM consent_events WHERE seq = 4")
    single = ledger.verify(workers=1)
    assert (single.ok, single.first_bad_seq) == (False, 4)
    assert ledger.verify(workers=2) == single
    # an edit inside the first range is found by the other process
    tamper("UPDATE consent_events SET actor = 'someone else' WHERE seq = 2")
    single = ledger.verify(workers=1)
    assert (single.ok, single.first_bad_seq, single.checked) == (False, 2, 1)
    assert ledger.verify(workers=2) == single
