"""A per-post choice, end to end (issue 18): the author marks one post "not for AI training" while a
`datalease serve` with its revocation worker runs; the partner's official delta-sharing client sees
that post leave the posts table within seconds, with a forget entry of scope `post` and reason
`post_opted_out`, while the author's other posts stay. A full rebuild afterwards still leaves it out
(the bulk compiler honours the choice), and someone else's post or an unknown post is refused with
nothing recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import ClientResponseError
from revocation_world import (
    LUMEN,
    PARTNER_OF,
    SENTIMETRICS,
    Base,
    Served,
    copy_base,
    heavy_users,
    post_key_of,
    released_posts_of,
)

from datalease.errors import UserError
from datalease.policy.vocabulary import post_choice_key
from datalease.services.consent import record_setting
from datalease.services.post_choices import set_post_choice
from datalease.services.releases import build_release
from datalease.store.forget import forget_entries

SCHEMA = "platform"
DEADLINE_S = 30.0


def _wait(check: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_S:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not within {DEADLINE_S}s: {what}")


def test_a_post_kept_out_of_training_leaves_the_share_within_seconds(
    base: Base, tmp_path: Path, server: Callable[..., Served]
) -> None:
    ws = copy_base(base, tmp_path / "home")
    author = heavy_users(ws, LUMEN, 1, also=SENTIMETRICS)[0]
    both = sorted(
        set(released_posts_of(ws, LUMEN, author)) & set(released_posts_of(ws, SENTIMETRICS, author))
    )
    assert len(both) >= 2, "the author needs two posts released to both partners"
    chosen, kept = both[0], both[1:]
    served = server(ws.settings.resolved_home, worker=True)
    clients = {a: served.partner(PARTNER_OF[a]) for a in (LUMEN, SENTIMETRICS)}

    set_post_choice(ws, author, chosen, allowed=False)

    for agreement, client in clients.items():
        gone = post_key_of(ws, agreement, chosen)

        def withdrawn(gone: str = gone, agreement: str = agreement) -> bool:
            try:
                frame: pd.DataFrame = clients[agreement].snapshot(agreement, "posts")
            except (FileNotFoundError, ClientResponseError):  # a file the batch just replaced: read again
                return False
            return gone not in set(frame["post_key"])

        _wait(withdrawn, f"{agreement}: post {chosen} withdrawn")
        posts = set(client.snapshot(agreement, "posts")["post_key"])
        assert {post_key_of(ws, agreement, p) for p in kept} <= posts, "only the one post leaves"
        forget = client.snapshot(agreement, "forget")
        mine = forget[forget["subject_key"] == gone]
        assert list(zip(mine["scope"], mine["reason_code"], strict=True)) == [("post", "post_opted_out")]

    # A full rebuild (the bulk compiler, not the withdrawal) still leaves the post out.
    build_release(ws, LUMEN)
    assert chosen not in released_posts_of(ws, LUMEN, author)
    assert set(kept) <= set(released_posts_of(ws, LUMEN, author))

    # Choosing again for training brings it back with the next build.
    set_post_choice(ws, author, chosen, allowed=True)
    build_release(ws, LUMEN)
    assert chosen in released_posts_of(ws, LUMEN, author)
    ws.engine.dispose()


def test_a_choice_on_someone_elses_or_an_unknown_post_is_refused_and_nothing_recorded(
    base: Base, tmp_path: Path
) -> None:
    ws = copy_base(base, tmp_path / "home")
    author, other = heavy_users(ws, LUMEN, 2)
    theirs = released_posts_of(ws, LUMEN, author)[0]
    before = ws.ledger.state_at(other, None)
    with pytest.raises(UserError, match=f"post {theirs} is not user {other}'s post"):
        set_post_choice(ws, other, theirs, allowed=False)
    with pytest.raises(UserError, match="only its author"):
        record_setting(ws, str(other), post_choice_key(theirs), "false")
    with pytest.raises(UserError, match="no post 999999999"):
        record_setting(ws, str(other), post_choice_key(999_999_999), "false")
    with pytest.raises(UserError, match=r"expected post\.<post_id>\.ai_training"):
        record_setting(ws, str(other), "post.x1.ai_training", "false")
    assert ws.ledger.state_at(other, None) == before
    with ws.session() as session:
        assert forget_entries(session, agreement_id=LUMEN) == []
    ws.engine.dispose()
