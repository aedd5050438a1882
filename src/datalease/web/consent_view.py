"""What the settings page adds for issue 15: under each chosen setting "You chose this on … after notice …"
with its signed receipt, and — when the browser sent Global Privacy Control — why a setting is off and
the toggles that confirm an override. Called by the settings routes; no HTTP here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from datalease.consent.ledger import SettingState
from datalease.consent.notice_shown import chosen_after
from datalease.policy.model import Policy
from datalease.policy.signals import signal_purposes
from datalease.policy.vocabulary import PURPOSE_KEY_PREFIX, purpose_key, purpose_lineage
from datalease.services.consent import signal_sent
from datalease.web.views import SettingsView, Toggle
from datalease.workspace import Workspace

GPC_NOTE = (
    "Your browser sent Global Privacy Control, so this is off: {purposes}. "
    "Turn a setting on below to confirm that you want it anyway."
)


@dataclass(frozen=True)
class Chosen:
    """Under a setting the person chose: when, after which notice, and the receipt of that choice."""

    text: str
    seq: int


@dataclass(frozen=True)
class ConsentPage:
    view: SettingsView
    chosen: dict[str, Chosen]  # setting key -> note
    gpc: str | None  # the banner, when the browser sent GPC
    overrides: list[Toggle]  # purposes the signal refuses that the page has no toggle for


def chosen_text(policy: Policy, state: SettingState) -> str:
    """From the notice and locale recorded with the choice; older events: inferred from its time."""
    label = chosen_after(policy, state.at, state.notice_sha256, state.notice_locale)
    return f"You chose this on {state.at:%-d %b %Y}" + (f" after notice {label}" if label else "") + "."


def consent_page(
    ws: Workspace, policy: Policy, view: SettingsView, country: str, now: datetime
) -> ConsentPage:
    states = ws.ledger.state_at(view.user_id, now)
    chosen = {key: Chosen(chosen_text(policy, state), state.seq) for key, state in states.items()}
    if not signal_sent(ws, view.user_id):
        return ConsentPage(view, chosen, None, [])
    region = policy.region_of(country)
    refused = signal_purposes(policy, "gpc", region)
    if not refused:
        return ConsentPage(view, chosen, None, [])

    def overridden(purpose: str) -> bool:
        return any(
            states.get(purpose_key(p)) is not None and states[purpose_key(p)].value
            for p in purpose_lineage(purpose)
        )

    def covered(key: str) -> bool:
        purpose = key.removeprefix(PURPOSE_KEY_PREFIX)
        return any(p in refused for p in purpose_lineage(purpose)) and not overridden(purpose)

    banner = GPC_NOTE.format(purposes=", ".join(p.replace("_", " ") for p in refused))
    purpose = view.purpose
    if covered(purpose.key):
        purpose = replace(
            purpose,
            on=False,
            explanation=purpose.explanation + " Off: your browser sent Global Privacy Control.",
        )
    overrides = [
        Toggle(
            purpose_key(p),
            f"Allow {p.replace('_', ' ')} despite Global Privacy Control",
            "Your browser asked sites not to sell or share your data. Turn this on to confirm an exception.",
            bool(states.get(purpose_key(p)) and states[purpose_key(p)].value),
            purpose_key(p) in states,
            False,
        )
        for p in refused
        if purpose_key(p) != view.purpose.key
    ]
    return ConsentPage(replace(view, purpose=purpose), chosen, banner, overrides)


def override_changes(page: ConsentPage, submitted: set[str]) -> dict[str, bool]:
    """The override toggles the form changed (absent = off)."""
    return {t.key: t.key in submitted for t in page.overrides if (t.key in submitted) != t.on}
