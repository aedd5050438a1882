"""`settings_in_effect` (what the platform API's decisions read) answers from `consent_current` when
every latest event of a person is at or before the instant asked, and from the events otherwise; for
any events and any instant it must say exactly what `ConsentLedger.state_at` says (Hypothesis, on
SQLite and PostgreSQL) — events before and after the instant, several per setting, at equal instants."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from datalease.consent.ledger import ConsentLedger, NewConsentEvent
from datalease.store.platform_api import settings_in_effect
from depth import examples

T0 = datetime(2026, 5, 1, tzinfo=UTC)
KEYS = ("share_with_partners", "share.posts", "share.likes", "purpose.train_ai_system.generative")
FRESH = itertools.count()  # each example's people are new to the ledger
EVENTS = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(KEYS), st.booleans(), st.integers(-3, 3)),
    min_size=0,
    max_size=25,
)


@settings(
    max_examples=examples(40, 400), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=EVENTS, asked_at=st.integers(-4, 4))
def test_the_settings_in_effect_are_the_ledgers(
    engine: Engine, events: list[tuple[int, str, bool, int]], asked_at: int
) -> None:
    ledger = ConsentLedger(engine)
    base = 10 * next(FRESH)
    people = [base + n for n in range(4)]
    if events:
        ledger.record_many(
            NewConsentEvent(base + person, key, value, at=T0 + timedelta(hours=hour))
            for person, key, value, hour in events
        )
    until = T0 + timedelta(hours=asked_at)
    with Session(engine) as session:
        found = settings_in_effect(session, people, until).by_user(people)
    expected = {p: {k: s.value for k, s in ledger.state_at(p, until).items()} for p in people}
    assert found == expected


def test_a_thousand_people_in_one_read(engine: Engine) -> None:
    """Both reads take the people in one parameter: a thousand, some with a later change, are answered."""
    ledger = ConsentLedger(engine)
    people = list(range(1_000_000, 1_001_007))
    ledger.record_many(NewConsentEvent(p, "share.posts", p % 2 == 0, at=T0) for p in people)
    ledger.record_many(
        NewConsentEvent(p, "share.posts", True, at=T0 + timedelta(days=1)) for p in people[::3]
    )
    with Session(engine) as session:
        found = settings_in_effect(session, people, T0 + timedelta(hours=1)).by_user(people)
    assert found == {p: {"share.posts": p % 2 == 0} for p in people}
