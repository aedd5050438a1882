"""One subject, one forget entry; counts are rows actually deleted (issue 11, item 3).

Several intents for the same subject in one batch (three `user_protect` events, opt-out / opt-in /
opt-out) once produced a forget entry each, with the full row count each: 21 "rows revoked" for a
person who had 7, and 20,000 duplicate events made 10,000 pending entries.
"""

from __future__ import annotations

from revocation_world import (
    LUMEN,
    RELEASED,
    SENTIMETRICS,
    TABLES,
    delta_rows,
    heavy_users,
    identity,
    released_posts_of,
    user_key_of,
)

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import process_pending
from datalease.services.events import submit_events
from datalease.store.forget import forget_entries
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def _held(ws: Workspace) -> dict[str, dict[str, set[tuple[object, ...]]]]:
    return {a: {t: {identity(r, t) for r in delta_rows(ws, a, t)} for t in TABLES[a]} for a in RELEASED}


def _entries(ws: Workspace, agreement: str) -> list[tuple[str, str, int]]:
    with ws.session() as session:
        return sorted(
            (e.scope, e.subject_key, e.rows) for e in forget_entries(session, agreement_id=agreement)
        )


def test_three_protect_events_make_one_entry_with_the_rows_deleted(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, SENTIMETRICS, 1, also=LUMEN)[0]
    before = _held(ws)
    now = utc_now().isoformat()
    submit_events(ws, [{"type": "user_protect", "user_id": user, "at": now, "id": f"p{i}"} for i in range(3)])
    result = process_pending(ws)
    assert result.intents == 3
    after = _held(ws)
    for agreement in RELEASED:
        deleted = sum(len(before[agreement][t] - after[agreement][t]) for t in TABLES[agreement])
        assert deleted > 0, agreement
        assert _entries(ws, agreement) == [("user", user_key_of(ws, agreement, user), deleted)]


def test_opt_out_in_out_in_one_batch_is_one_entry(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, SENTIMETRICS, 1, also=LUMEN)[0]
    before = _held(ws)
    for value in (False, True, False):
        ws.ledger.record(user, MASTER_KEY, value)
    process_pending(ws)
    after = _held(ws)
    for agreement in RELEASED:
        deleted = sum(len(before[agreement][t] - after[agreement][t]) for t in TABLES[agreement])
        assert deleted > 0, agreement
        assert _entries(ws, agreement) == [("user", user_key_of(ws, agreement, user), deleted)]


def test_overlapping_subjects_count_each_deleted_row_once(home: Workspace) -> None:
    """A person opts out while one of their posts is deleted and another person removes a repost of
    one of their posts: the entries' rows add up to the rows deleted, each row counted once."""
    ws = home
    author, other = heavy_users(ws, SENTIMETRICS, 2, also=LUMEN)

    def in_both(user: int) -> int:
        return sorted(
            set(released_posts_of(ws, LUMEN, user)) & set(released_posts_of(ws, SENTIMETRICS, user))
        )[0]

    post, other_post = in_both(author), in_both(other)
    before = _held(ws)
    ws.ledger.record(author, MASTER_KEY, False)
    submit_events(
        ws,
        [
            {"type": "post_delete", "user_id": author, "post_id": post},
            {"type": "post_delete", "user_id": other, "post_id": other_post},
            {"type": "post_delete", "user_id": other, "post_id": other_post, "id": "again"},
        ],
    )
    process_pending(ws)
    after = _held(ws)
    for agreement in RELEASED:
        deleted = sum(len(before[agreement][t] - after[agreement][t]) for t in TABLES[agreement])
        entries = _entries(ws, agreement)
        assert sum(rows for _scope, _key, rows in entries) == deleted, entries
        scopes = sorted(scope for scope, _key, _rows in entries)
        assert scopes == ["post", "user"], entries  # the author's post is in the author's entry
        assert len({key for _scope, key, _rows in entries}) == len(entries)
