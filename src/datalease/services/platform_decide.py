"""Decisions through the platform API: one record or a batch of up to 10,000, each answered by
`policy.decide.decide()` over the cached active policy and users (services/decision_context.py) —
the same policy objects as `datalease decide`, no third compiler."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from datalease.policy.decide import decide
from datalease.policy.model import Decision, RecordFacts, Scope
from datalease.services.decision_context import context_of
from datalease.services.settings_api import SettingsApiError
from datalease.store.platform_api import consent_of_users
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

MAX_RECORDS: Final = 10_000


@dataclass(frozen=True)
class DecideRequest:
    user_id: int
    category: str
    purposes: tuple[str, ...]
    partner: str | None = None
    at: datetime | None = None


def decide_many(ws: Workspace, requests: Sequence[DecideRequest], *, batch: bool = True) -> list[Decision]:
    """Decide every request (all are validated first; a bad one refuses the call, naming
    `records[i].<field>`, or `<field>` for a single decision)."""
    if len(requests) > MAX_RECORDS:
        raise SettingsApiError(
            413, "too_many", "records", f"at most {MAX_RECORDS:,} records per call, got {len(requests):,}"
        )
    snap = context_of(ws).snapshot()
    policy = snap.policy
    now = utc_now()

    def where(i: int, name: str) -> str:
        return f"records[{i}].{name}" if batch else name

    for i, r in enumerate(requests):
        if r.user_id not in snap.users:
            status = 400 if batch else 404
            raise SettingsApiError(
                status, "unknown_user", where(i, "user_id"), f"user {r.user_id}: no such user"
            )
        if r.category not in policy.categories:
            raise SettingsApiError(
                400, "invalid", where(i, "category"), f"expected one of {', '.join(policy.categories)}"
            )
        if not r.purposes:
            raise SettingsApiError(400, "invalid", where(i, "purposes"), "name at least one purpose")
        for purpose in r.purposes:
            if purpose not in policy.purposes:
                raise SettingsApiError(
                    400,
                    "invalid",
                    where(i, "purposes"),
                    f"{purpose!r}: expected one of {', '.join(policy.purposes)}",
                )
    wanted: dict[datetime, set[int]] = {}
    for r in requests:
        wanted.setdefault(r.at or now, set()).add(r.user_id)
    consent: dict[tuple[int, datetime], dict[str, bool]] = {}
    with ws.session() as session:  # one chunked read per instant asked, not one query per record
        for when, users in wanted.items():
            for user_id, state in consent_of_users(session, sorted(users), when).items():
                consent[(user_id, when)] = state
    answers = []
    for r in requests:
        when = r.at or now
        record = RecordFacts(category=r.category, owner=snap.users[r.user_id], created_at=min(when, now))
        scope = Scope(r.purposes, (r.category,), r.partner)
        answers.append(decide(policy, record, consent[(r.user_id, when)], scope, when))
    return answers
