"""Per-post choices: a person keeps one of their own posts out of AI training.

The setting is `post.<post_id>.ai_training` (false = not for AI training), recorded in the consent
ledger like any other setting — so a refusal queues its revocation (scope `post`) in the same
transaction and the worker delivers it within seconds. Only the post's author may set it: a key about
someone else's post, or a post the platform does not have, is refused and nothing is recorded.

`check_post_choice` is the one validation every surface calls (the CLI's `consent set`, the settings
form, the My posts page and the platform JSON API).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pyarrow.compute as pc

from datalease.consent.chain import ConsentEvent
from datalease.consent.inputs import ConsentError
from datalease.errors import UserError
from datalease.platform.schemas import MAX_ID
from datalease.policy.vocabulary import POST_KEY_PREFIX, post_choice_key, post_of_choice_key
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


class PostChoiceError(UserError):
    """A per-post choice refused: malformed key, unknown post, or not the person's own post."""


def check_post_choice(ws: Workspace, user_id: int, key: str) -> int | None:
    """The post a per-post key is about, checked to be `user_id`'s own (None: not a per-post key).

    Raises PostChoiceError naming the key and what was expected; callers record nothing then.
    """
    if not key.startswith(POST_KEY_PREFIX):
        return None
    post_id = post_of_choice_key(key)
    if post_id is None:
        raise PostChoiceError(f"{key!r}: expected post.<post_id>.ai_training with post_id 0 to {MAX_ID}")
    author = author_of(ws, post_id)
    if author is None:
        raise PostChoiceError(f"{key!r}: no post {post_id} on this platform")
    if author != user_id:
        raise PostChoiceError(
            f"{key!r}: post {post_id} is not user {user_id}'s post; only its author may choose for it"
        )
    return post_id


def check_post_choices(ws: Workspace, user_id: int, keys: Iterable[str]) -> None:
    """Check every per-post key of a batch before anything is recorded (all or none)."""
    for key in keys:
        check_post_choice(ws, user_id, key)


def author_of(ws: Workspace, post_id: int) -> int | None:
    found = (
        ws.lake.dataset("posts")
        .to_table(columns=["author_id"], filter=pc.field("post_id") == post_id)
        .column("author_id")
        .to_pylist()
    )
    return int(found[0]) if found else None


def set_post_choice(
    ws: Workspace, user_id: int, post_id: int, allowed: bool, *, source: str = "user"
) -> ConsentEvent:
    """Record the author's choice for one post (allowed=False keeps it out of AI training)."""
    key = post_choice_key(post_id)
    check_post_choice(ws, user_id, key)
    try:
        return ws.ledger.record(user_id, key, allowed, source=source, actor=f"user:{user_id}")
    except ConsentError as exc:
        raise UserError(str(exc)) from exc


@dataclass(frozen=True)
class PostLine:
    post_id: int
    text: str
    created_at: datetime
    visibility: str
    deleted: bool
    for_ai_training: bool  # False: the author keeps this post out of AI training
    choice_at: datetime | None  # when the author last chose (None: never; the post follows settings)


def posts_of(ws: Workspace, user_id: int, limit: int = 200) -> list[PostLine]:
    """A person's posts, newest first, each with their per-post choice."""
    table = ws.lake.dataset("posts").to_table(filter=pc.field("author_id") == user_id)
    table = table.take(pc.sort_indices(table, sort_keys=[("created_at", "descending")]))
    states = ws.ledger.state_at(user_id, utc_now())
    lines = []
    for row in table.slice(0, limit).to_pylist():
        state = states.get(post_choice_key(row["post_id"]))
        lines.append(
            PostLine(
                post_id=row["post_id"],
                text=row["text"],
                created_at=row["created_at"],
                visibility=row["visibility"],
                deleted=row["deleted_at"] is not None,
                for_ai_training=state is None or state.value,
                choice_at=state.at if state else None,
            )
        )
    return lines


def refused_posts(ws: Workspace, user_id: int) -> list[int]:
    """The posts this person keeps out of AI training, by id."""
    states = ws.ledger.state_at(user_id, utc_now())
    return sorted(
        pid for key, s in states.items() if not s.value and (pid := post_of_choice_key(key)) is not None
    )
