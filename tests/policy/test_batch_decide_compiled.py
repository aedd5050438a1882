"""The platform's compiled batch path (services/batch_decide.py) answers exactly what `decide()`
answers, record by record, on generated batches: mixed users, categories, purposes, partners and
instants (the default `now` too, and one instant written with another UTC offset), with per-post
choices, regulator orders, notices and signals — the worlds of test_two_compilers.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_two_compilers import (
    COUNTRIES,
    PARTNERS,
    SETTING_KEYS,
    STATES,
    instants,
    notice_and_signal_settings,
    policies,
    regulator_orders,
    with_notices_and_signals,
)

from datalease.policy.decide import decide
from datalease.policy.model import RecordFacts, Scope, UserFacts
from datalease.policy.resolve import adult_cutoff
from datalease.policy.vocabulary import CATEGORIES, PURPOSES, post_choice_key
from datalease.services.batch_decide import DecideRequest, decide_compiled
from datalease.store.platform_api import SettingRows
from depth import examples

PLUS_TWO = timezone(timedelta(hours=2))


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    policy = draw(with_notices_and_signals(draw(policies())))
    edges = [v.effective_from for v in policy.versions] + [
        e for v in policy.versions for r in v.rules for e in (r.starts, r.ends) if e is not None
    ]
    # Mostly after the first version took effect, and mostly active adults, so that the consent
    # rules (settings, per-post choices, notices, signals) decide many records, not the exclusions.
    first = min(v.effective_from for v in policy.versions)
    later = st.integers(0, 500).map(lambda d: first + timedelta(days=d))
    near = st.sampled_from(edges) | later | later | instants
    now = draw(near)
    asked = draw(st.lists(near, min_size=1, max_size=3, unique=True))
    policy = replace(policy, orders=tuple(draw(st.lists(regulator_orders(policy, asked[0]), max_size=2))))
    cutoff = adult_cutoff(asked[0], policy.hard_exclusions.minimum_age)
    adult = st.dates(min_value=date(1950, 1, 1), max_value=date(1995, 1, 1))
    birth = (
        st.none()
        | st.sampled_from((cutoff, cutoff + timedelta(days=1), cutoff - timedelta(days=1)))
        | st.dates(min_value=date(1950, 1, 1), max_value=date(2020, 1, 1))
        | adult
        | adult
    )
    state = st.sampled_from(("active", "active", "active", *STATES))
    users = {
        i: UserFacts(i, draw(st.sampled_from(COUNTRIES)), draw(birth), draw(state))
        for i in range(draw(st.integers(1, 8)))
    }
    post_ids = list(range(100, 103))
    # each instant asked (and now) has its own settings per user: the state in effect then
    consent: dict[datetime, dict[int, dict[str, bool]]] = {}
    for when in [now, *asked]:
        consent[when] = {}
        for uid in users:
            chosen = draw(st.dictionaries(st.sampled_from(SETTING_KEYS), st.booleans(), max_size=5))
            chosen.update(draw(notice_and_signal_settings(policy)))
            for pid in draw(st.lists(st.sampled_from(post_ids), max_size=3, unique=True)):
                chosen[post_choice_key(pid)] = draw(st.sampled_from((False, False, True)))
            consent[when][uid] = chosen
    at = st.none() | st.sampled_from(asked) | st.sampled_from(asked).map(lambda t: t.astimezone(PLUS_TWO))
    requests = []
    for _ in range(draw(st.integers(1, 40))):
        category = draw(st.sampled_from(("posts", *CATEGORIES)))
        requests.append(
            DecideRequest(
                user_id=draw(st.sampled_from(sorted(users))),
                category=category,
                purposes=tuple(
                    draw(
                        st.just(("train_ai_system.generative",))
                        | st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True)
                    )
                ),
                partner=draw(st.none() | st.sampled_from(PARTNERS)),
                at=draw(at),
                post_id=draw(st.none() | st.sampled_from(post_ids)) if category == "posts" else None,
            )
        )
    return {"policy": policy, "users": users, "consent": consent, "requests": requests, "now": now}


@settings(
    max_examples=examples(ci=80, deep=200),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batches())
def test_the_compiled_batch_answers_what_decide_answers(batch: dict[str, Any]) -> None:
    policy, users, consent, now = batch["policy"], batch["users"], batch["consent"], batch["now"]
    settings_at = {when: SettingRows.of(by_user) for when, by_user in consent.items()}
    got = decide_compiled(policy, users, settings_at, batch["requests"], now)
    assert len(got) == len(batch["requests"])
    for i, (r, answer) in enumerate(zip(batch["requests"], got, strict=True)):
        when = r.at or now
        record = RecordFacts(r.category, users[r.user_id], min(when, now), post_id=r.post_id)
        expected = decide(
            policy, record, consent[when][r.user_id], Scope(r.purposes, (r.category,), r.partner), when
        )
        assert answer == expected, (i, r, expected, answer)
