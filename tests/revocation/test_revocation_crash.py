"""A real `datalease revoke process` killed with SIGKILL at each crash point, then run again: every
revocation completes exactly once.

Intents: a master opt-out and a posts opt-out (users with posts in both shares), a deleted post and a
removed like. After the kill and the re-run: every intent processed, one delivery per (intent,
agreement), forget entries neither missing nor duplicated (store and Delta), each row deleted once
in the change feed, no Delta commit that no release pins, and the partner reads what the oracle says.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cli_harness import rows
from deltalake import DeltaTable
from release_oracle import Row
from release_world import LUMEN, SENTIMETRICS, run_cli
from revocation_world import (
    RELEASED,
    TABLES,
    Served,
    Subject,
    as_rows,
    delta_rows,
    forget_expected,
    frame_rows,
    heavy_users,
    identity,
    oracle_now,
    post_key_of,
    released_posts_of,
    removal_carries_keys_only,
    replay,
    user_key_of,
    withdrawn,
)

from datalease.policy.vocabulary import MASTER_KEY, category_key
from datalease.releases.model import Release
from datalease.revocation.worker import process_pending
from datalease.services.events import submit_events
from datalease.store.releases import latest_release, list_releases
from datalease.workspace import Workspace

# Run again with the homes on PostgreSQL (make test, README "Tests").
pytestmark = pytest.mark.postgresql_homes

CRASH_POINTS = ("revoke:before_commit", "revoke:after_commit", "revoke:before_mark")


def a_released_like(ws: Workspace, avoid: set[int]) -> tuple[int, int]:
    """A (liker, post) whose like sentimetrics holds, of people not in `avoid`."""
    held = {(r["user_key"], r["post_key"]) for r in delta_rows(ws, SENTIMETRICS, "likes")}
    posts = {p["post_id"]: p["author_id"] for p in ws.lake.read("posts").to_pylist()}
    for like in ws.lake.read("likes").to_pylist():
        user, post = like["user_id"], like["post_id"]
        if user in avoid or posts[post] in avoid:
            continue
        if (user_key_of(ws, SENTIMETRICS, user), post_key_of(ws, SENTIMETRICS, post)) in held:
            return user, post
    raise AssertionError("sentimetrics holds no like")


def queue_revocations(ws: Workspace) -> list[Subject]:
    first, second, third = heavy_users(ws, LUMEN, 3, also=SENTIMETRICS)
    ws.ledger.record(first, MASTER_KEY, False)
    ws.ledger.record(second, category_key("posts"), False)
    post = released_posts_of(ws, LUMEN, third)[0]
    liker, liked = a_released_like(ws, {first, second, third})
    submit_events(
        ws,
        [
            {"id": "crash-post", "type": "post_delete", "user_id": third, "post_id": post},
            {"id": "crash-like", "type": "like_delete", "user_id": liker, "post_id": liked},
        ],
    )
    return [
        Subject("user", first, reason="opted_out"),
        Subject("user", second, reason="category_opted_out"),
        Subject("post", third, post, reason="post_deleted"),
        Subject("likes", liker, liked, reason="like_removed"),
    ]


def instant(stored: str | datetime) -> datetime:
    """A stored UTC time (SQLite text, a PostgreSQL timestamp) as an aware datetime."""
    parsed = stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def pinned(ws: Workspace, agreement: str) -> Release:
    with ws.session() as session:
        release = latest_release(session, agreement)
    assert release is not None
    return release


@pytest.mark.parametrize(
    ("point", "recover"),
    [
        *((p, "revoke") for p in CRASH_POINTS),
        ("revoke:after_commit", "build"),  # a build delivers pending revocations before it starts
    ],
)
def test_a_killed_batch_completes_exactly_once(
    home: Workspace, server: Callable[..., Served], point: str, recover: str
) -> None:
    ws = home
    path = ws.settings.resolved_home
    before = {a: pinned(ws, a) for a in RELEASED}
    shown = {
        a: {t: as_rows(delta_rows(ws, a, t, before[a].table(t).table_version)) for t in TABLES[a]}  # type: ignore[union-attr]
        for a in RELEASED
    }
    ((mark,),) = rows(path, "SELECT coalesce(max(intent_id), 0) FROM revocation_intents")
    assert rows(path, "SELECT count(*) FROM revocation_intents WHERE processed_at IS NULL") == [(0,)]
    subjects = queue_revocations(ws)
    intent_ids = [
        i for (i,) in rows(path, "SELECT intent_id FROM revocation_intents WHERE intent_id > ?", (mark,))
    ]
    assert len(intent_ids) == len(subjects)

    killed = run_cli(path, "revoke", "process", crashpoint=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert rows(path, "SELECT count(*) FROM revocation_intents WHERE processed_at IS NULL") == [
        (len(subjects),)
    ]

    if recover == "build":
        rebuilt = run_cli(path, "release", "build", LUMEN)
        assert rebuilt.returncode == 0, rebuilt.stderr
    again = run_cli(path, "revoke", "process")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"{len(subjects) if recover == 'revoke' else 0} intent(s) processed")
    assert process_pending(ws).intents == 0  # nothing left over for a further run

    # Every intent processed, delivered once to every agreement that had released data.
    assert rows(path, "SELECT count(*) FROM revocation_intents WHERE processed_at IS NULL") == [(0,)]
    deliveries = rows(
        path, "SELECT intent_id, agreement_id FROM revocation_deliveries WHERE intent_id > ?", (mark,)
    )
    assert Counter(deliveries) == Counter((i, a) for i in intent_ids for a in RELEASED)

    allowed = {a: oracle_now(ws, a) for a in RELEASED}
    for agreement in RELEASED:
        deleted = withdrawn(ws, agreement, shown[agreement], allowed[agreement], subjects)
        assert sum(sum(c.values()) for c in deleted.values()) > 0, agreement
        expected_forget = Counter(forget_expected(ws, agreement, deleted, subjects))
        stored = rows(
            path,
            "SELECT forget_id, scope, subject_key, reason_code, rows, release_id FROM forget_entries "
            "WHERE agreement_id = ?",
            (agreement,),
        )
        assert Counter((s, k, r, n) for _, s, k, r, n, _ in stored) == expected_forget, agreement
        forget_table = DeltaTable(str(path / "shares" / agreement / "forget")).to_pyarrow_table()
        forget_ids = forget_table.column("forget_id").to_pylist()
        assert len(forget_ids) == len(set(forget_ids)), f"{agreement}: duplicated forget rows {forget_ids}"
        assert set(forget_ids) == {f for f, *_ in stored}, agreement
        stored_rows = rows(
            path,
            "SELECT forget_id, subject_key, scope, reason_code, requested_at, deadline FROM forget_entries "
            "WHERE agreement_id = ?",
            (agreement,),
        )
        in_store = {r[0]: (r[1], r[2], r[3], instant(r[4]), instant(r[5])) for r in stored_rows}
        for row in forget_table.to_pylist():  # the partner's copy says what the store says
            assert in_store[row["forget_id"]] == (
                row["subject_key"],
                row["scope"],
                row["reason_code"],
                row["requested_at"],
                row["deadline"],
            ), row
        check_no_orphans(ws, agreement, before[agreement])
        # Each row was deleted once, and the tables hold what the oracle allows.
        for table in TABLES[agreement]:
            start = before[agreement].table(table)
            assert start is not None
            held = {identity(r, table) for r in delta_rows(ws, agreement, table, start.table_version)}
            now = {identity(r, table) for r in delta_rows(ws, agreement, table)}
            assert now <= held, f"{agreement}.{table}: a revocation added rows"
            assert held - now == {identity(r, table) for r in deleted[table]}, f"{agreement}.{table}"
            assert as_rows(delta_rows(ws, agreement, table)) == allowed[agreement][table], (
                f"{agreement}.{table}"
            )

    # The partner's view through the official client.
    served = server(path)
    lumen = served.partner("lumen-labs")
    for table in (*TABLES[LUMEN], "forget"):
        snapshot = as_rows(frame_rows(lumen.snapshot(LUMEN, table)))
        expected: Counter[Row] = (
            allowed[LUMEN][table] if table != "forget" else as_rows(delta_rows(ws, LUMEN, "forget"))
        )
        assert snapshot == expected, f"{LUMEN}.{table}: the partner's snapshot differs"
        feed = frame_rows(lumen.changes(LUMEN, table, 0))
        deletes = Counter(identity(c, table) for c in feed if c["_change_type"] == "delete")
        assert all(n == 1 for n in deletes.values()), f"{LUMEN}.{table}: a key deleted twice in the feed"
        assert all(removal_carries_keys_only(c, table) for c in feed if c["_change_type"] == "delete")
        state = replay({}, feed, table)
        assert as_rows(state.values()) == snapshot, f"{LUMEN}.{table}: replaying the feed from 0"


def check_no_orphans(ws: Workspace, agreement: str, before: Release) -> None:
    """Every Delta commit since `before` is pinned by a release; every release pins existing versions;
    deliveries and forget entries point at releases of their agreement."""
    path = ws.settings.resolved_home
    with ws.session() as session:
        releases = list_releases(session, agreement)
    categories = sorted({t.category for r in releases for t in r.tables})  # builds do not pin `forget`
    for category in categories:
        pinned_versions = {t.table_version for r in releases for t in r.tables if t.category == category}
        delta = DeltaTable(str(path / "shares" / agreement / category))
        assert max(pinned_versions) == delta.version(), f"{agreement}.{category}: latest commit not pinned"
        start = before.table(category)
        first = start.table_version + 1 if start is not None else 0
        unpinned = set(range(first, int(delta.version()) + 1)) - pinned_versions
        assert not unpinned, f"{agreement}.{category}: commits {sorted(unpinned)} pinned by no release"
    ids = {r.release_id for r in releases}
    for (release_id,) in rows(
        path, "SELECT release_id FROM revocation_deliveries WHERE agreement_id = ?", (agreement,)
    ):
        assert release_id in ids
    for (release_id,) in rows(
        path, "SELECT release_id FROM forget_entries WHERE agreement_id = ?", (agreement,)
    ):
        assert (
            release_id in ids and next(r for r in releases if r.release_id == release_id).kind == "revocation"
        )
