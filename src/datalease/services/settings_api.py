"""Settings through the platform API: read a person's effective settings (with where each comes from
and the policy's default), and write many changes at once — validated like the CLI and the pages
(`policy.vocabulary`), recorded through `ConsentLedger.record_many` (one transaction: the chain, the
derived state and the revocation intents), made idempotent by an `Idempotency-Key`."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.exc import IntegrityError

from datalease.consent.inputs import ConsentError, new_event_ids
from datalease.consent.ledger import NewConsentEvent
from datalease.consent.notice_shown import Shown, ShownError, check_claimed
from datalease.policy.model import Policy
from datalease.policy.resolve import outcome
from datalease.policy.vocabulary import (
    MASTER_KEY,
    SettingKeyError,
    category_key,
    partner_block_key,
    purpose_key,
    validate_setting_key,
)
from datalease.services import licensing
from datalease.services.consent import record_signal
from datalease.services.decision_context import context_of
from datalease.services.group_commit import committer_of
from datalease.services.post_choices import PostChoiceError, check_post_choice
from datalease.store.models import SOURCES
from datalease.store.platform_api import find_answer, save_answer
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

MAX_CHANGES: Final = 10_000
GENERATIVE: Final = "train_ai_system.generative"


class SettingsApiError(Exception):
    """A refusal naming the field: `status`, `error` (a code), `field`, `message`."""

    def __init__(self, status: int, error: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.field, self.message = status, error, field, message


@dataclass(frozen=True)
class RequestSignals:
    """Signals the request itself carries. `gpc`: the `Sec-GPC` header (True for "1", None when absent)."""

    gpc: bool | None = None
    sec_gpc: str | None = None  # the header as sent (a value other than "1" is refused)


def parse_signals(sec_gpc: str | None) -> RequestSignals:
    return RequestSignals(gpc=None if sec_gpc is None else sec_gpc.strip() == "1", sec_gpc=sec_gpc)


@dataclass(frozen=True)
class SettingChange:
    user_id: int
    key: str
    value: bool
    at: datetime | None = None
    source: str = "user"
    notice_sha256: str | None = None  # the notice shown (checked against the policy's notices)
    locale: str | None = None  # the locale it was shown in


@dataclass(frozen=True)
class SettingLine:
    key: str
    value: bool | None
    explicit: bool
    source: str  # user / platform / import, or policy_default
    at: datetime | None
    policy_default: bool | None


def _defaults(ws: Workspace, policy: Policy, country: str, at: datetime) -> dict[str, bool]:
    region = policy.region_of(country)
    version = policy.version_at(at)

    def mechanism(category: str) -> str:
        return outcome(policy, version, region, category, GENERATIVE, at).mechanism if version else "excluded"

    found = {MASTER_KEY: True}  # as the pages show it (where the policy excludes, nothing flows anyway)
    for category in policy.categories:
        found[category_key(category)] = mechanism(category) == "opt_out"
    for purpose in policy.purposes:
        found[purpose_key(purpose)] = True
    for partner in licensing.partners(ws):
        found[partner_block_key(partner.name)] = False
    return found


def effective_settings(ws: Workspace, user_id: int, at: datetime | None = None) -> list[SettingLine]:
    """Every setting that applies to `user_id` at `at` (default now), explicit ones and defaults."""
    when = at or utc_now()
    snap = context_of(ws).snapshot()
    facts = snap.users.get(user_id)
    if facts is None:
        raise SettingsApiError(404, "not_found", "user_id", f"user {user_id}: no such user on this platform")
    defaults = _defaults(ws, snap.policy, facts.country, when)
    state = ws.ledger.state_at(user_id, when)
    lines = []
    for key in [*defaults, *(k for k in sorted(state) if k not in defaults)]:
        explicit = state.get(key)
        default = defaults.get(key)
        if explicit is not None:
            lines.append(SettingLine(key, explicit.value, True, explicit.source, explicit.at, default))
        else:
            lines.append(SettingLine(key, default, False, "policy_default", None, default))
    return lines


def request_digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _event_id(idempotency_key: str, index: int) -> str:
    digest = hashlib.sha256(f"{idempotency_key}\x00{index}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def check_changes(ws: Workspace, changes: Sequence[SettingChange]) -> list[Shown | None]:
    """The validation the pages and the CLI apply, naming `changes[i].<field>`; nothing is recorded.
    Returns, per change, the notice shown and its locale (checked against the policy's notices)."""
    if not changes:
        raise SettingsApiError(400, "invalid", "changes", "give at least one change")
    if len(changes) > MAX_CHANGES:
        raise SettingsApiError(
            413, "too_many", "changes", f"at most {MAX_CHANGES:,} changes per call, got {len(changes):,}"
        )
    users = context_of(ws).snapshot().users
    for i, change in enumerate(changes):
        try:
            validate_setting_key(change.key)
        except SettingKeyError as exc:
            raise SettingsApiError(400, "invalid", f"changes[{i}].key", str(exc)) from exc
        if change.user_id not in users:
            raise SettingsApiError(
                400, "unknown_user", f"changes[{i}].user_id", f"user {change.user_id}: no such user"
            )
        try:
            check_post_choice(ws, change.user_id, change.key)  # a per-post choice: its author's only
        except PostChoiceError as exc:
            raise SettingsApiError(400, "invalid", f"changes[{i}].key", str(exc)) from exc
        if change.source not in SOURCES:
            raise SettingsApiError(
                400, "invalid", f"changes[{i}].source", f"expected one of {', '.join(SOURCES)}"
            )
    policy = ws.active_policy()
    shown: list[Shown | None] = []
    for i, change in enumerate(changes):
        try:
            shown.append(check_claimed(policy, change.notice_sha256, change.locale))
        except ShownError as exc:
            raise SettingsApiError(400, "invalid", f"changes[{i}].{exc.field}", str(exc)) from exc
    return shown


def write_settings(
    ws: Workspace,
    changes: Sequence[SettingChange],
    *,
    actor: str,
    signals: RequestSignals,
    idempotency_key: str | None = None,
    request_sha256: str = "",
) -> tuple[int, dict[str, Any]]:
    """Record `changes` all or none; (status, answer). With an `idempotency_key`, a retry returns the
    first answer and records nothing; the same key with other content is a 409."""
    if idempotency_key is not None:
        with ws.session() as session:
            stored = find_answer(session, idempotency_key)
        if stored is not None:
            return _replay(stored.request_sha256, request_sha256, stored.status, stored.answer)
    shown = check_changes(ws, changes)
    record_signals(ws, {c.user_id for c in changes}, signals)
    fresh = new_event_ids(len(changes)) if idempotency_key is None else []
    events = [
        NewConsentEvent(
            c.user_id,
            c.key,
            c.value,
            at=c.at,
            source=c.source,
            actor=actor,
            event_id=fresh[i] if idempotency_key is None else _event_id(idempotency_key, i),
            notice_sha256=seen.notice_sha256 if seen else None,
            notice_locale=seen.locale if seen else None,
            surface="api",
        )
        for i, (c, seen) in enumerate(zip(changes, shown, strict=True))
    ]
    try:
        result = committer_of(ws).record(events)  # group commit: returns once committed
    except ConsentError as exc:
        if idempotency_key is not None and exc.field == "event_id":
            raise SettingsApiError(409, "conflict", "Idempotency-Key", _CONFLICT) from exc
        raise SettingsApiError(400, "invalid", _field_of(exc), str(exc)) from exc
    seq, head = ws.ledger.head()
    answer = {
        "recorded": result.appended,
        "already_recorded": result.already_present,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "chain_head": {"seq": seq, "hash": head},
    }
    if idempotency_key is not None:
        text = json.dumps(answer)
        try:
            with ws.session() as session, session.begin():
                save_answer(session, idempotency_key, request_sha256, 200, text, utc_now())
        except IntegrityError:  # a concurrent call with the same key stored its answer first
            with ws.session() as session:
                stored = find_answer(session, idempotency_key)
            if stored is not None:
                return _replay(stored.request_sha256, request_sha256, stored.status, stored.answer)
    return 200, answer


_CONFLICT: Final = "this Idempotency-Key was used for a request with other content; use a new key"


def record_signals(ws: Workspace, user_ids: set[int], signals: RequestSignals) -> None:
    """`Sec-GPC: 1` is recorded as `signal.gpc` for each person the call is about, before their changes
    (so a later explicit choice in the same call is a confirmed override); another value is a 400."""
    if signals.sec_gpc is None:
        return
    if signals.gpc is not True:
        raise SettingsApiError(
            400, "invalid", "Sec-GPC", f"expected the value 1, got {signals.sec_gpc[:40]!r}"
        )
    for user_id in sorted(user_ids):
        record_signal(ws, user_id, signals.sec_gpc)


def _replay(stored_sha: str, sha: str, status: int, text: str) -> tuple[int, dict[str, Any]]:
    if stored_sha != sha:
        raise SettingsApiError(409, "conflict", "Idempotency-Key", _CONFLICT)
    answer: dict[str, Any] = json.loads(text)
    return status, {**answer, "replayed": True}


def _field_of(exc: ConsentError) -> str:
    return exc.field if exc.index is None else f"changes[{exc.index}].{exc.field}"
