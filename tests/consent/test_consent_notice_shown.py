"""Consent events record what was shown and where (issue 15, deliverable 2), on SQLite and PostgreSQL.

Proves: chain encoding 2 is sorted compact JSON with the notice, locale and surface (pinned bytes, and
equal to the json.dumps definition for any content); events without them keep encoding 1 byte for byte;
a ledger mixing both kinds verifies; changing (or clearing) a recorded notice, locale or surface of one
event is named by `verify`; bad values are refused naming the field with nothing recorded; migration
0014 keeps old events verifying, and after it edits are still refused by the triggers of 0001 and 0007
(recreated identically on SQLite); a downgrade is refused while events carry the new fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from datalease.consent.chain import (
    GENESIS_HASH,
    ConsentEvent,
    canonical_encoding,
    reference_encoding,
)
from datalease.consent.inputs import ConsentError
from datalease.consent.ledger import ConsentLedger, NewConsentEvent
from datalease.store.db import alembic_config, current_revision, head_revision, upgrade

NOTICE = "ab" * 32
OTHER = "cd" * 32
T0 = datetime(2024, 11, 2, 9, 0, tzinfo=UTC)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def event(**changes: object) -> ConsentEvent:
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


def test_encoding_2_is_pinned_and_encoding_1_unchanged() -> None:
    old = canonical_encoding(GENESIS_HASH, event())
    assert b"encoding" not in old and b"surface" not in old  # the bytes every stored event was hashed with
    shown = canonical_encoding(
        GENESIS_HASH, event(notice_sha256=NOTICE, notice_locale="en", surface="settings_page")
    )
    assert shown == (
        b'{"actor":"user:42","at":"2024-11-15T10:00:00.000000Z","encoding":2,'
        b'"event_id":"3f2b8c1e-0d4a-4e8b-9a61-2f0c5d7e9b13","key":"share.posts",'
        b'"notice_locale":"en","notice_sha256":"' + NOTICE.encode() + b'",'
        b'"prev_hash":"' + GENESIS_HASH.encode() + b'","recorded_at":"2024-11-15T10:00:00.000001Z",'
        b'"seq":1,"source":"user","surface":"settings_page","user_id":42,"value":false}'
    )
    signal = json.loads(canonical_encoding(GENESIS_HASH, event(source="signal", surface="signal")))
    assert signal["encoding"] == 2 and signal["notice_sha256"] is None and signal["notice_locale"] is None


@given(
    sha=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    locale=st.none() | st.sampled_from(["en", "de", "pt-BR"]),
    surface=st.none() | st.sampled_from(["settings_page", "api", "import", "signal"]),
    actor=st.text(min_size=1, max_size=20),
)
def test_fast_encoding_equals_the_json_definition(
    sha: str | None, locale: str | None, surface: str | None, actor: str
) -> None:
    sample = event(notice_sha256=sha, notice_locale=locale, surface=surface, actor=actor)
    assert canonical_encoding(GENESIS_HASH, sample) == reference_encoding(GENESIS_HASH, sample)


def mixed_ledger(ledger: ConsentLedger) -> None:
    """#1 old-style, #2 with a notice (settings page), #3 a signal, #4..#5 a bulk mix, #6 old-style."""
    ledger.record(1, "share.posts", True, at=minutes(1))
    ledger.record(
        1,
        "share.likes",
        False,
        at=minutes(2),
        notice_sha256=NOTICE,
        notice_locale="de",
        surface="settings_page",
    )
    ledger.record(2, "signal.gpc", True, source="signal", actor="signal:gpc", surface="signal")
    ledger.record_many(
        [
            NewConsentEvent(3, "share.posts", False, at=minutes(4), surface="api"),
            NewConsentEvent(
                3,
                "share.likes",
                True,
                at=minutes(5),
                notice_sha256=OTHER,
                notice_locale="en",
                surface="import",
            ),
        ]
    )
    ledger.record(4, "share.posts", False, at=minutes(6))


def test_a_mixed_ledger_verifies_and_reads_back_what_was_shown(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    mixed_ledger(ledger)
    assert ledger.verify().ok
    assert [e.encoding for e in ledger.history(1)] == [1, 2]
    shown = ledger.history(1)[1]
    assert (shown.notice_sha256, shown.notice_locale, shown.surface) == (NOTICE, "de", "settings_page")
    state = ledger.state_at(3)
    assert (state["share.likes"].notice_sha256, state["share.likes"].surface) == (OTHER, "import")
    assert (state["share.posts"].notice_sha256, state["share.posts"].surface) == (None, "api")
    assert ledger.history(2)[0].source == "signal"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("notice_sha256", f"'{OTHER}'"),
        ("notice_locale", "'en'"),
        ("surface", "'api'"),
        ("notice_sha256", "NULL"),
    ],
)
def test_a_tampered_notice_field_is_named_by_verify(
    engine: Engine, tamper: object, column: str, value: str
) -> None:
    ledger = ConsentLedger(engine)
    mixed_ledger(ledger)
    tamper(f"UPDATE consent_events SET {column} = {value} WHERE seq = 2")  # type: ignore[operator]
    result = ledger.verify()
    assert not result.ok and result.first_bad_seq == 2, result
    assert "event 2 was altered" in (result.problem or "") and "notice shown or surface" in (
        result.problem or ""
    )


def test_clearing_every_new_field_of_an_event_is_caught(engine: Engine, tamper: object) -> None:
    """Back to encoding 1 by clearing the fields: the hash was made with encoding 2, so it breaks."""
    ledger = ConsentLedger(engine)
    mixed_ledger(ledger)
    tamper(  # type: ignore[operator]
        "UPDATE consent_events SET notice_sha256 = NULL, notice_locale = NULL, surface = NULL WHERE seq = 2"
    )
    assert ledger.verify().first_bad_seq == 2


def test_an_old_event_given_a_notice_is_caught(engine: Engine, tamper: object) -> None:
    ledger = ConsentLedger(engine)
    mixed_ledger(ledger)
    tamper(f"UPDATE consent_events SET notice_sha256 = '{NOTICE}' WHERE seq = 1")  # type: ignore[operator]
    assert ledger.verify().first_bad_seq == 1


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"surface": "kiosk"}, "surface"),
        ({"notice_sha256": "AB" * 32}, "notice_sha256"),
        ({"notice_sha256": "ab" * 31}, "notice_sha256"),
        ({"notice_locale": "en"}, "notice_locale"),
        ({"notice_sha256": NOTICE, "notice_locale": "english"}, "notice_locale"),
        ({"notice_sha256": NOTICE, "notice_locale": "en-gb"}, "notice_locale"),
    ],
)
def test_bad_values_are_refused_naming_the_field(engine: Engine, fields: dict[str, str], named: str) -> None:
    ledger = ConsentLedger(engine)
    with pytest.raises(ConsentError) as caught:
        ledger.record_many(
            [NewConsentEvent(1, "share.posts", True), NewConsentEvent(1, "share.likes", True, **fields)]
        )
    assert caught.value.field == named and str(caught.value).startswith(f"events[1].{named}: ")
    assert ledger.count() == 0


def test_an_idempotent_retry_must_repeat_what_was_shown(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    eid = "0190e1c2-7a4b-7c3d-8e5f-0123456789ab"
    first = ledger.record(1, "share.posts", True, event_id=eid, notice_sha256=NOTICE, notice_locale="en")
    assert (
        ledger.record(1, "share.posts", True, event_id=eid, notice_sha256=NOTICE, notice_locale="en") == first
    )
    with pytest.raises(ConsentError, match="event_id"):
        ledger.record(1, "share.posts", True, event_id=eid, notice_sha256=NOTICE, notice_locale="de")
    assert ledger.count() == 1


# --- the migration ------------------------------------------------------------------------------------


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _triggers(engine: Engine) -> set[tuple[str, str]]:
    """Every trigger on the consent tables with its full definition."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('consent_events', 'consent_current', 'consent_chain_head')"
            ).all()
        else:
            rows = conn.exec_driver_sql(
                "SELECT t.tgname, pg_get_triggerdef(t.oid) || ' ' || p.prosrc FROM pg_trigger t "
                "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal AND t.tgrelid::regclass::text "
                "IN ('consent_events', 'consent_current', 'consent_chain_head')"
            ).all()
    return {(str(name), str(sql)) for name, sql in rows}


def test_migration_keeps_old_events_and_every_trigger(engine: Engine) -> None:
    ledger = ConsentLedger(engine)
    for u in range(1, 30):
        ledger.record(u, "share.posts", u % 2 == 0, at=minutes(u))
    ledger.record(7, "share.posts", True, at=minutes(99))
    ledger.record(7, "share.likes", False, at=minutes(0))
    head = ledger.head()
    with_new = _triggers(engine)
    _downgrade(engine, "0013")  # a store as it was before (no new fields recorded: allowed)
    assert current_revision(engine) == "0013"
    before = _triggers(engine)
    assert len(before) == 9  # 0001: 2, 0007: 7 (on either database)
    assert upgrade(engine) == head_revision()
    assert _triggers(engine) == before == with_new  # recreated exactly
    assert ledger.head() == head and ledger.verify().ok
    assert ledger.state_at(7)["share.posts"].value is True

    # the append-only and derived-state triggers still refuse edits
    for statement, says in [
        ("UPDATE consent_events SET value = NOT value WHERE seq = 3", "append-only"),
        ("DELETE FROM consent_events WHERE seq = 30", "append-only"),
        ("UPDATE consent_current SET value = NOT value WHERE user_id = 7", "must mirror"),
        ("DELETE FROM consent_current WHERE user_id = 7", "derived from consent_events"),
        ("UPDATE consent_chain_head SET last_seq = 5", "consent_chain_head must point"),
    ]:
        with pytest.raises(DBAPIError, match=says), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with pytest.raises(DBAPIError, match="ck_consent_events_surface"), engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO consent_events (seq, event_id, user_id, key, value, at, recorded_at, source, actor, "
            "prev_hash, hash, surface) VALUES (999, 'x', 1, 'share.posts', true, '2024-11-02T09:00:00.000000Z', "
            "'2024-11-02T09:00:00.000000Z', 'user', 'user:1', 'x', 'x', 'kiosk')"
        )

    # the new fields and source `signal` are recorded after it, and the chain still verifies
    ledger.record(8, "signal.gpc", True, source="signal", actor="signal:gpc", surface="signal")
    ledger.record(8, "share.posts", False, notice_sha256=NOTICE, notice_locale="en", surface="settings_page")
    assert ledger.verify().ok
    with pytest.raises(RuntimeError, match="downgrade is refused"):
        _downgrade(engine, "0013")
    assert current_revision(engine) == head_revision()
    assert ledger.verify().ok
