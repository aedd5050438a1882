"""What an intent is about (pure): its subject, the reason partners see, and the platform ids an
incremental diff must reconsider."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from datalease.platform.events import ACCOUNT_EVENTS, COUNTRY_EVENT, ENGAGEMENT_EVENTS, POST_EVENTS
from datalease.policy.vocabulary import post_of_choice_key, revoking_setting
from datalease.revocation.model import Intent

SCOPE_USER: Final = "user"
SCOPE_POST: Final = "post"
ENGAGEMENT_SCOPES: Final = {"likes": "like", "reposts": "repost", "bookmarks": "bookmark"}


@dataclass(frozen=True)
class Subject:
    scope: str  # user | post | like | repost | bookmark
    user_id: int | None
    post_id: int | None
    table: str | None  # the engagement table of a like/repost/bookmark subject
    reason_code: str


def subject_of(intent: Intent) -> Subject:
    detail = intent.detail
    if intent.source == "consent" and post_of_choice_key(detail) is not None:
        # A per-post choice withdraws one post (and what links to it), not the person.
        return Subject(SCOPE_POST, intent.user_id, post_of_choice_key(detail), None, "post_opted_out")
    if intent.source == "consent":
        family = revoking_setting(detail)
        return Subject(SCOPE_USER, intent.user_id, None, None, family.reason if family else "consent_changed")
    if detail in POST_EVENTS:
        return Subject(SCOPE_POST, intent.user_id, intent.post_id, None, POST_EVENTS[detail][1])
    if detail in ENGAGEMENT_EVENTS:
        table, reason = ENGAGEMENT_EVENTS[detail]
        return Subject(ENGAGEMENT_SCOPES[table], intent.user_id, intent.post_id, table, reason)
    if detail in ACCOUNT_EVENTS:
        return Subject(SCOPE_USER, intent.user_id, None, None, ACCOUNT_EVENTS[detail][1] or "account_changed")
    if detail == COUNTRY_EVENT:
        return Subject(SCOPE_USER, intent.user_id, None, None, "country_changed")
    raise ValueError(f"intent {intent.intent_id}: unknown detail {detail!r}")


@dataclass(frozen=True)
class AffectedIds:
    """The platform ids an incremental diff must reconsider for a batch of intents."""

    users: tuple[int, ...]
    posts: tuple[int, ...]
    engagement: dict[str, tuple[tuple[int, int], ...]]


def affected_ids(subjects: Sequence[Subject]) -> AffectedIds:
    users = sorted({s.user_id for s in subjects if s.scope == SCOPE_USER and s.user_id is not None})
    posts = sorted({s.post_id for s in subjects if s.scope == SCOPE_POST and s.post_id is not None})
    engagement: dict[str, set[tuple[int, int]]] = {}
    for s in subjects:
        if s.table is not None and s.user_id is not None and s.post_id is not None:
            engagement.setdefault(s.table, set()).add((s.user_id, s.post_id))
    return AffectedIds(tuple(users), tuple(posts), {t: tuple(sorted(p)) for t, p in engagement.items()})


def forget_id(agreement_id: str, intent_id: int, scope: str, subject_key: str) -> str:
    """Deterministic, so a retried batch finds the entries it already wrote."""
    text = f"{agreement_id}\n{intent_id}\n{scope}\n{subject_key}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
