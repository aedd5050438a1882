"""Per-post choices: a person keeps one of their posts out of AI training (`post.<id>.ai_training`
set to false) without leaving altogether. The one place this rule lives; `decide` and `compile` call
it through small hooks.

The refusal applies to the author's own post (the category `posts`), for the purposes of the
`train_ai_system` family only, and — like every consent setting — only where the region's rule asks for
consent (an excluded purpose is excluded already). Likes, reposts and bookmarks of a refused post stop
flowing too, because a release sends an engagement only when its post goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from datalease.policy.model import RecordFacts
from datalease.policy.vocabulary import (
    POST_KEY_PREFIX,
    POST_KEY_SUFFIX,
    Reason,
    post_choice_key,
    purpose_lineage,
)

TRAINING: Final = "train_ai_system"
POST_CATEGORY: Final = "posts"


def applies_to(purpose: str) -> bool:
    """Whether a per-post refusal covers `purpose` (the training family)."""
    return TRAINING in purpose_lineage(purpose)


def post_reasons(consent: Mapping[str, bool], record: RecordFacts, purpose: str) -> set[str]:
    """The point decision's part: the owner refused this post for training."""
    if record.category != POST_CATEGORY or record.post_id is None or not applies_to(purpose):
        return set()
    return {Reason.POST_OPTED_OUT} if consent.get(post_choice_key(record.post_id)) is False else set()


def post_refusal_join(consent: str, owner: str, post_id: str) -> str:
    """The bulk compiler's part: LEFT JOIN the owner's setting for this very post (alias `pcx`).

    Only the per-post rows of the snapshot are read, their post id parsed back to an integer (keys are
    validated canonical: `post.<digits without leading zeros>.ai_training`), so the join is an integer
    join against a small relation. The snapshot holds one row per (user, key): no row is multiplied.
    """
    prefix, suffix = len(POST_KEY_PREFIX), len(POST_KEY_SUFFIX)
    return (
        f"LEFT JOIN (\n  SELECT user_id, CAST(substr(key, {prefix + 1}, length(key) - {prefix + suffix}) AS BIGINT)"
        f" AS post_id, value\n  FROM {consent}\n  WHERE key LIKE '{POST_KEY_PREFIX}%{POST_KEY_SUFFIX}'\n"
        f") AS pcx ON pcx.post_id = {post_id} AND pcx.user_id = {owner}"
    )


POST_REFUSED_SQL: Final = "COALESCE(pcx.value, TRUE) = FALSE"
