"""Decisions: may one record go to these purposes (and partner) at T — with reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow.compute as pc

from datalease.errors import UserError
from datalease.policy.decide import decide
from datalease.policy.model import Decision, RecordFacts, Scope
from datalease.releases.notifications import notified_settings
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


@dataclass(frozen=True)
class Decided:
    user_id: int
    category: str
    at: datetime
    decision: Decision


def decide_record(
    ws: Workspace,
    user: str,
    category: str,
    purposes: tuple[str, ...],
    *,
    partner: str | None = None,
    post: int | None = None,
    at: datetime | None = None,
) -> Decided:
    """`decide`: a live public record of `category` owned by `user` (or the given post) at `at`."""
    policy = ws.require_policy()
    if category not in policy.categories:
        raise UserError(f"--category {category!r}: expected one of {', '.join(policy.categories)}")
    for purpose in purposes:
        if purpose not in policy.purposes:
            raise UserError(f"--purpose {purpose!r}: expected one of {', '.join(policy.purposes)}")
    when = at or utc_now()
    owner = ws.user_facts(user)
    record = RecordFacts(category=category, owner=owner, created_at=min(when, utc_now()))
    if post is not None:
        if category != "posts":
            raise UserError("--post only applies to --category posts")
        record = _post_record(ws, post, owner.user_id)
    scope = Scope(purposes, (category,), partner)
    return Decided(
        owner.user_id, category, when, decide(policy, record, _settings(ws, owner.user_id, when), scope, when)
    )


def _settings(ws: Workspace, user_id: int, at: datetime) -> dict[str, bool]:
    """The person's settings plus whether they were notified in time (issue 15)."""
    return {**ws.consent_at(user_id, at), **notified_settings(ws, ws.require_policy(), user_id, at)}


def _post_record(ws: Workspace, post_id: int, owner_id: int) -> RecordFacts:
    posts = ws.lake.read("posts")
    rows = posts.filter(pc.equal(posts["post_id"], post_id)).to_pylist()
    if not rows:
        raise UserError(f"--post {post_id}: no such post in the platform lake")
    row = rows[0]
    if row["author_id"] != owner_id:
        raise UserError(f"--post {post_id}: written by user {row['author_id']}, not by --user")
    return RecordFacts(
        "posts", ws.user_facts(str(owner_id)), row["created_at"], row["deleted_at"], row["visibility"]
    )
