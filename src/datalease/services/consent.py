"""Consent: record a setting (CLI, pages, API — the same validation and ledger path, so a revoking
change queues its revocation in the same transaction), read a person's settings, verify the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from datalease.consent.chain import ConsentEvent
from datalease.consent.inputs import ConsentError
from datalease.consent.ledger import BulkResult, NewConsentEvent, SettingState
from datalease.consent.notice_shown import chosen_after, shown_on_page
from datalease.consent.verify import VerifyResult
from datalease.errors import UserError
from datalease.policy.vocabulary import SettingKeyError, parse_setting_value, signal_key, validate_setting_key
from datalease.services.post_choices import check_post_choice, check_post_choices
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def record_setting(
    ws: Workspace,
    user: str,
    key: str,
    value: str,
    *,
    at: datetime | None = None,
    source: str = "user",
    actor: str | None = None,
) -> ConsentEvent:
    """`consent set USER KEY VALUE`: one change, appended to the hash-chained ledger."""
    try:
        validate_setting_key(key)
        flag = parse_setting_value(value)
    except SettingKeyError as exc:
        raise UserError(f"KEY {exc}") from exc
    except ValueError as exc:
        raise UserError(f"VALUE {exc}") from exc
    facts = ws.user_facts(user)
    check_post_choice(ws, facts.user_id, key)  # a per-post key: the author's own post only
    try:
        return ws.ledger.record(
            facts.user_id, key, flag, at=at, source=source, actor=actor or f"user:{facts.user_id}"
        )
    except ConsentError as exc:
        raise UserError(str(exc)) from exc


def save_settings(
    ws: Workspace,
    user_id: int,
    changes: Mapping[str, bool],
    *,
    source: str = "user",
    accept_language: str | None = None,
) -> BulkResult:
    """A person's settings form: every changed setting in one ledger transaction (all or none),
    recorded with surface `settings_page`, the notice in force and the locale the page showed it in
    (from `accept_language` among the notice's locales, else its first)."""
    check_post_choices(ws, user_id, changes)
    shown = shown_on_page(ws.active_policy(), utc_now(), accept_language)
    events = [
        NewConsentEvent(
            user_id,
            key,
            value,
            source=source,
            actor=f"user:{user_id}",
            notice_sha256=shown.notice_sha256 if shown else None,
            notice_locale=shown.locale if shown else None,
            surface="settings_page",
        )
        for key, value in changes.items()
    ]
    try:
        return ws.ledger.record_many(events)
    except ConsentError as exc:
        raise UserError(str(exc)) from exc


@dataclass(frozen=True)
class Settings:
    user_id: int
    at: datetime
    states: dict[str, SettingState]  # explicit settings by key; absent keys follow the policy's default


def settings_of(ws: Workspace, user: str, at: datetime | None = None) -> Settings:
    """`consent show`: a person's explicit settings in effect at `at` (default now)."""
    facts = ws.user_facts(user)
    when = at or utc_now()
    return Settings(facts.user_id, when, ws.ledger.state_at(facts.user_id, when))


def verify_ledger(ws: Workspace) -> VerifyResult:
    """`consent verify`: the hash chain, then the state derived from it."""
    return ws.ledger.verify()


# --- issue 15: preference signals ------------------------------------------------------------------

GPC_HEADER = "Sec-GPC"


def record_signal(ws: Workspace, user_id: int, header_value: str | None) -> ConsentEvent | None:
    """A request's `Sec-GPC` header: `1` records `signal.gpc = true` once (source and surface `signal`,
    actor `signal:gpc`); absent records nothing; any other value is refused naming the header, nothing recorded.
    The pages and the settings API call this before recording the body's changes."""
    if header_value is None:
        return None
    if header_value.strip() != "1":
        raise UserError(
            f"{GPC_HEADER}: expected the value 1 (Global Privacy Control), got {header_value[:40]!r}; nothing recorded"
        )
    key = signal_key("gpc")
    current = ws.ledger.state_at(user_id).get(key)
    if current is not None and current.value:
        return None
    try:
        return ws.ledger.record(user_id, key, True, source="signal", actor="signal:gpc", surface="signal")
    except ConsentError as exc:
        raise UserError(str(exc)) from exc


def signal_sent(ws: Workspace, user_id: int) -> bool:
    """Whether the person's browser sent Global Privacy Control (signal.gpc is true now)."""
    state = ws.ledger.state_at(user_id).get(signal_key("gpc"))
    return state is not None and state.value


def notices_followed(ws: Workspace, found: Settings) -> dict[str, str | None]:
    """`consent show`: per setting, the notice the choice followed: "2024-11 (en)" from the notice and
    locale recorded with it; for an older event, inferred from its time ("2024-11 (de, en)"); or None."""
    policy = ws.active_policy()
    return {
        key: chosen_after(policy, state.at, state.notice_sha256, state.notice_locale)
        for key, state in found.states.items()
    }
