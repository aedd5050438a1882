"""Decisions through the platform API: one record or a batch of up to 10,000, over the cached active
policy and users (services/decision_context.py) — the same policy objects as `datalease decide`, no
third compiler. A small batch is answered by `policy.decide.decide()` record by record; a large one
(see `takes_the_plan`) by the bulk compiler's plan in DuckDB (services/batch_decide.py), the
same answers at several times the rate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from datalease.policy.decide import decide
from datalease.policy.model import Decision, RecordFacts, Scope
from datalease.policy.vocabulary import PARTNER_NAME_RE
from datalease.services.batch_decide import DecideRequest, decide_compiled
from datalease.services.decision_context import Snapshot, context_of
from datalease.services.settings_api import SettingsApiError
from datalease.store.platform_api import SettingRows, settings_in_effect
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

MAX_RECORDS: Final = 10_000
# A batch takes the compiled plan from COMPILED_FROM + RECORDS_PER_PLAN × (plans it needs) records:
# a plan costs DuckDB ~5 ms to plan, a query ~10 ms, decide() ~20 µs a record (measured here).
COMPILED_FROM: Final = 600
RECORDS_PER_PLAN: Final = 300

__all__ = ["COMPILED_FROM", "MAX_RECORDS", "DecideRequest", "decide_each", "decide_many", "takes_the_plan"]


def decide_many(
    ws: Workspace,
    requests: Sequence[DecideRequest],
    *,
    batch: bool = True,
    compiled: bool | None = None,
) -> list[Decision]:
    """Decide every request (all are validated first; a bad one refuses the call, naming
    `records[i].<field>`, or `<field>` for a single decision). `compiled` chooses the path (default:
    `takes_the_plan`); both give the same answers."""
    if len(requests) > MAX_RECORDS:
        raise SettingsApiError(
            413, "too_many", "records", f"at most {MAX_RECORDS:,} records per call, got {len(requests):,}"
        )
    snap = context_of(ws).snapshot()
    if not _all_valid(snap, requests):
        for i, r in enumerate(requests):
            refusal = _refusal(snap, r, f"records[{i}]." if batch else "", 400 if batch else 404)
            if refusal is not None:
                raise refusal
    use_plan = compiled if compiled is not None else takes_the_plan(requests)
    return _decided(ws, snap, requests, compiled=use_plan)


def decide_each(ws: Workspace, requests: Sequence[DecideRequest]) -> list[Decision | SettingsApiError]:
    """Single decisions asked at once (the API's requests in flight, server/coalesce.py): each is
    validated on its own — a bad one is refused as if asked alone, the others still decided — and the
    valid ones share one consent read per instant."""
    snap = context_of(ws).snapshot()
    answers: list[Decision | SettingsApiError | None] = [_refusal(snap, r, "", 404) for r in requests]
    valid = [r for r, a in zip(requests, answers, strict=True) if a is None]
    decided = iter(_decided(ws, snap, valid, compiled=False))
    return [a if a is not None else next(decided) for a in answers]


def _all_valid(snap: Snapshot, requests: Sequence[DecideRequest]) -> bool:
    """Whether `_refusal` finds nothing in any request, checked once per known user and once per
    kind of record (category, purposes, whether it names a post) — what `_refusal` reads — rather than
    once per record (~5 ms of a 10,000-record batch)."""
    if not snap.users.keys() >= {r.user_id for r in requests}:
        return False
    kinds = {(r.category, r.purposes, r.post_id is None): r for r in requests}
    return all(_refusal(snap, r, "", 400) is None for r in kinds.values())


def _refusal(snap: Snapshot, r: DecideRequest, prefix: str, unknown_user: int) -> SettingsApiError | None:
    """Why the request cannot be decided (the field named `<prefix><field>`), or None."""
    policy = snap.policy
    if r.user_id not in snap.users:
        return SettingsApiError(
            unknown_user, "unknown_user", f"{prefix}user_id", f"user {r.user_id}: no such user"
        )
    if r.category not in policy.categories:
        return SettingsApiError(
            400, "invalid", f"{prefix}category", f"expected one of {', '.join(policy.categories)}"
        )
    if not r.purposes:
        return SettingsApiError(400, "invalid", f"{prefix}purposes", "name at least one purpose")
    for purpose in r.purposes:
        if purpose not in policy.purposes:
            return SettingsApiError(
                400,
                "invalid",
                f"{prefix}purposes",
                f"{purpose!r}: expected one of {', '.join(policy.purposes)}",
            )
    if r.post_id is not None and r.category != "posts":
        return SettingsApiError(
            400, "invalid", f"{prefix}post_id", "only a record of the category posts has a post id"
        )
    return None


def _decided(
    ws: Workspace, snap: Snapshot, requests: Sequence[DecideRequest], *, compiled: bool
) -> list[Decision]:
    """The decisions of validated requests."""
    if not requests:
        return []
    policy = snap.policy
    now = utc_now()
    wanted: dict[datetime, set[int]] = {}
    if all(r.at is None for r in requests):  # the usual case, without a dictionary lookup per record
        wanted[now] = {r.user_id for r in requests}
    else:
        for r in requests:
            wanted.setdefault(r.at or now, set()).add(r.user_id)
    settings: dict[datetime, SettingRows] = {}
    with ws.session() as session:  # one read per instant asked, not one query per record
        for when, users in wanted.items():
            settings[when] = settings_in_effect(session, sorted(users), when)
    if compiled:
        return decide_compiled(policy, snap.users, settings, requests, now)
    consent = {when: rows.by_user(sorted(wanted[when])) for when, rows in settings.items()}
    answers = []
    for r in requests:
        when = r.at or now
        record = RecordFacts(
            category=r.category, owner=snap.users[r.user_id], created_at=min(when, now), post_id=r.post_id
        )
        scope = Scope(r.purposes, (r.category,), r.partner)
        answers.append(decide(policy, record, consent[when][r.user_id], scope, when))
    return answers


def takes_the_plan(requests: Sequence[DecideRequest]) -> bool:
    """Large batches take the plan, unless they would need many plans (one per category, purposes,
    partner and instant asked: each costs a compile and a branch of the query). A partner name that no
    setting can name (it would only be a string literal in the SQL) keeps a batch on `decide()`,
    which answers the same."""
    if len(requests) < COMPILED_FROM + RECORDS_PER_PLAN:
        return False
    plans = {(r.category, r.purposes, r.partner, r.at) for r in requests}
    return COMPILED_FROM + RECORDS_PER_PLAN * len(plans) <= len(requests) and all(
        r.partner is None or PARTNER_NAME_RE.fullmatch(r.partner) for r in requests
    )
