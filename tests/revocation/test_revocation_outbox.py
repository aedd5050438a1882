"""The revocation outbox: a consent change that withdraws data writes its intent in the same
transaction as the ledger append (on SQLite and PostgreSQL); one that does not, writes none."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from datalease.config import Settings
from datalease.consent.inputs import ConsentError
from datalease.consent.ledger import NewConsentEvent
from datalease.policy.vocabulary import MASTER_KEY, category_key, partner_block_key, purpose_key
from datalease.workspace import Workspace

AT = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def ws(db_url: str, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(Settings(home=tmp_path / "home", database_url=db_url, master_key=None, workers=1))
    workspace.init()
    yield workspace
    workspace.engine.dispose()


def intents(ws: Workspace) -> list[dict[str, Any]]:
    with ws.engine.connect() as conn:
        result = conn.execute(
            text(
                "SELECT intent_id, source, consent_seq, event_id, user_id, post_id, detail, processed_at "
                "FROM revocation_intents ORDER BY intent_id"
            )
        )
        return [dict(r._mapping) for r in result]


def events(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM consent_events")).scalar_one())


REVOKING = [
    (MASTER_KEY, False),
    (category_key("posts"), False),
    (category_key("likes"), False),
    (purpose_key("train_ai_system.generative"), False),
    (partner_block_key("lumen-labs"), True),
]
NOT_REVOKING = [
    (MASTER_KEY, True),
    (category_key("posts"), True),
    (category_key("bookmarks"), True),
    (purpose_key("train_ai_system"), True),
    (partner_block_key("lumen-labs"), False),
]


@pytest.mark.parametrize(("key", "value"), REVOKING)
def test_a_revoking_change_writes_exactly_one_intent(ws: Workspace, key: str, value: bool) -> None:
    event = ws.ledger.record(7, key, value, at=AT)
    assert intents(ws) == [
        {
            "intent_id": 1,
            "source": "consent",
            "consent_seq": event.seq,
            "event_id": None,
            "user_id": 7,
            "post_id": None,
            "detail": key,
            "processed_at": None,
        }
    ]


@pytest.mark.parametrize(("key", "value"), NOT_REVOKING)
def test_opting_in_writes_no_intent(ws: Workspace, key: str, value: bool) -> None:
    ws.ledger.record(7, key, value, at=AT)
    assert events(ws) == 1
    assert intents(ws) == []


def test_record_many_writes_an_intent_per_revoking_event_and_a_retry_adds_none(ws: Workspace) -> None:
    ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in ("e1", "e2", "e3", "e4", "e5")}
    batch = [
        NewConsentEvent(1, MASTER_KEY, False, at=AT, event_id=ids["e1"]),
        NewConsentEvent(2, MASTER_KEY, True, at=AT, event_id=ids["e2"]),
        NewConsentEvent(3, category_key("reposts"), False, at=AT, event_id=ids["e3"]),
        NewConsentEvent(4, partner_block_key("acme"), True, at=AT, event_id=ids["e4"]),
        NewConsentEvent(5, partner_block_key("acme"), False, at=AT, event_id=ids["e5"]),
    ]
    result = ws.ledger.record_many(batch, batch_size=2)
    assert result.appended == 5
    with ws.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT event_id, seq FROM consent_events")).all())
    seqs = {name: stored[event_id] for name, event_id in ids.items()}
    found = [(i["consent_seq"], i["user_id"], i["detail"]) for i in intents(ws)]
    assert found == [
        (seqs["e1"], 1, MASTER_KEY),
        (seqs["e3"], 3, category_key("reposts")),
        (seqs["e4"], 4, partner_block_key("acme")),
    ]
    # The same import again: every event is already there, no intent is added.
    again = ws.ledger.record_many(batch, batch_size=2)
    assert again.appended == 0 and again.already_present == 5
    ws.ledger.record(1, MASTER_KEY, False, at=AT, event_id=ids["e1"])
    assert len(intents(ws)) == 3


def test_an_import_that_fails_leaves_no_intent_behind(ws: Workspace) -> None:
    """The first chunk (an opt-out) is appended with its intent, the second chunk is refused: the
    whole transaction, intent included, is rolled back."""
    batch = [
        NewConsentEvent(1, MASTER_KEY, False, at=AT),
        NewConsentEvent(2, "share.no_such_category", False, at=AT),
    ]
    with pytest.raises(ConsentError, match=r"events\[1\]"):
        ws.ledger.record_many(batch, batch_size=1)
    assert events(ws) == 0
    assert intents(ws) == []
