"""Releases over a sequence of builds, each checked against an independent oracle.

Between builds the platform changes the way it does in production: consent events (opt-outs,
`share.posts=false`, bookmark opt-ins, refused purposes, blocked partners, opt-backs-in — effective
now, backdated, or scheduled for later), deleted and restored posts, account state and country
changes, birthdays, new and edited posts, new and undone likes/reposts/bookmarks, all written back
through `ingest_file` and curated. After EVERY build the pinned table versions of every agreement
must hold exactly what `decide()` + HMAC say, and an incremental build must equal a full rebuild.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from release_oracle import Row, check_release, load_source, pinned_contents
from release_world import (
    AGREEMENTS,
    SETTING_CHOICES,
    T0,
    Platform,
    birth_date_turning_18,
    copy_home,
)

from datalease.releases.support_tables import is_licensed_data
from datalease.services.releases import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace
from depth import examples

KINDS = (
    "consent",
    "consent_active",
    "delete_post",
    "restore_post",
    "state",
    "country",
    "birthday",
    "new_post",
    "edit_text",
    "engage",
    "unengage",
)
# Where in the step an event takes effect: backdated before the previous release, inside the step,
# exactly at the next build's T, or scheduled after it (it must take effect at a later build).
FRACTIONS = (-0.5, 0.3, 0.999, 1.0, 1.5)
STATES = ("active", "protected", "suspended", "deactivated", "deleted")
COUNTRIES = ("US", "GB", "DE", "BR", "CH", "FR", "JP")
ENGAGEMENT = ("likes", "reposts", "bookmarks")
TEXTS = (
    "the new album is amazing, write to me at ann.smith@example.com",
    "this weather ruined my morning",
    "the council vote starts next week, call me on (415) 555-0142",
    "hot take: the bike lane is the best thing this year cc @sunny_fox1",
    "nothing personal here",
)


@dataclass(frozen=True)
class Change:
    kind: str
    a: int
    b: int
    fraction: float


@dataclass(frozen=True)
class Step:
    changes: tuple[Change, ...]
    hours: int
    full: bool


def step_strategy() -> st.SearchStrategy[Step]:
    change = st.builds(
        Change,
        st.sampled_from(KINDS),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.sampled_from(FRACTIONS),
    )
    return st.builds(
        Step,
        st.lists(change, min_size=1, max_size=8).map(tuple),
        st.integers(1, 72),
        st.sampled_from((False, False, True)),  # mostly incremental, sometimes --full
    )


def apply_change(ws: Workspace, platform: Platform, change: Change, start: datetime, end: datetime) -> None:
    when = start + (end - start) * change.fraction
    users, posts = platform.user_ids(), platform.post_ids()
    active = platform_active_users(platform)
    a, b = change.a, change.b
    match change.kind:
        case "consent" | "consent_active":
            pool = active if change.kind == "consent_active" else users
            key, value = SETTING_CHOICES[b % len(SETTING_CHOICES)]
            ws.ledger.record(pool[a % len(pool)], key, value, at=when)
        case "delete_post":
            post = platform.post(posts[a % len(posts)])
            platform.update("posts", (post["post_id"],), deleted_at=max(when, post["created_at"]))
        case "restore_post":
            deleted = [p for p in posts if platform.post(p)["deleted_at"] is not None]
            if deleted:
                platform.update("posts", (deleted[a % len(deleted)],), deleted_at=None)
        case "state":
            platform.update("users", (active[a % len(active)],), account_state=STATES[b % len(STATES)])
        case "country":
            platform.update("users", (active[a % len(active)],), country=COUNTRIES[b % len(COUNTRIES)])
        case "birthday":
            platform.update("users", (active[a % len(active)],), birth_date=birth_date_turning_18(when))
        case "new_post":
            post_id = max(posts) + 1
            row = {
                "post_id": post_id,
                "author_id": active[a % len(active)],
                "text": TEXTS[b % len(TEXTS)],
                "lang": None if b % 7 == 0 else "en",
                "created_at": when,
                "visibility": "followers" if b % 5 == 0 else "public",
                "deleted_at": None,
            }
            platform.insert("posts", (post_id,), row)
        case "edit_text":
            post_id = posts[a % len(posts)]
            platform.update("posts", (post_id,), text=f"{TEXTS[b % len(TEXTS)]} (edited {b})")
        case "engage":
            category = ENGAGEMENT[b % 3]
            user_id, post_id = users[a % len(users)], posts[(a * 7 + b) % len(posts)]
            row = {"user_id": user_id, "post_id": post_id, "created_at": when, "deleted_at": None}
            platform.insert(category, (user_id, post_id), row)
        case "unengage":
            category = ENGAGEMENT[b % 3]
            keys = sorted(platform.rows[category])
            platform.update(category, keys[a % len(keys)], deleted_at=when)
        case _:
            raise AssertionError(change.kind)


def platform_active_users(platform: Platform) -> list[int]:
    """Users with the most posts and engagement: changes to them move many release rows."""
    counts: Counter[int] = Counter(p["author_id"] for p in platform.rows["posts"].values())
    for category in ENGAGEMENT:
        counts.update(k[0] for k in platform.rows[category])
    return [user_id for user_id, _ in counts.most_common(40)]


def build_all(ws: Workspace, at: datetime, *, full: bool) -> None:
    for agreement_id in AGREEMENTS:
        result = build_release(ws, agreement_id, at=at, full=full)
        if full:
            assert result.full_reason == "requested (--full)"
        else:
            # Nothing global changed: the build must take the incremental path we are testing.
            assert result.full_reason is None, f"{agreement_id}: unexpected full build: {result.full_reason}"
            assert not result.release.full_build


def latest_contents(ws: Workspace) -> dict[str, dict[str, Counter[Row]]]:
    out = {}
    with ws.session() as session:
        for agreement_id in AGREEMENTS:
            release = latest_release(session, agreement_id)
            assert release is not None
            # The licensed tables: ledger_head rows name their release and build instant, so a rebuild
            # has its own (check_release holds each build's row to the release ledger).
            pinned = pinned_contents(ws, release)
            out[agreement_id] = {c: rows for c, rows in pinned.items() if is_licensed_data(c)}
    return out


def run_sequence(ws: Workspace, scratch: Path, sequence: Sequence[Step]) -> None:
    """Build at T0, then per step: change the platform, build everything, check it all."""
    build_all(ws, T0, full=True)
    source = load_source(ws, T0)
    for agreement_id in AGREEMENTS:
        check_release(ws, agreement_id, source)
    at = T0
    for number, step in enumerate(sequence, start=1):
        following = at + timedelta(hours=step.hours)
        platform = Platform.read(ws, scratch / f"input-{number}")
        for change in step.changes:
            apply_change(ws, platform, change, at, following)
        platform.flush()
        build_all(ws, following, full=step.full)
        source = load_source(ws, following)
        for agreement_id in AGREEMENTS:
            check_release(ws, agreement_id, source)
        at = following
    # After the whole history of incremental builds, a full rebuild of the same T in a copy of the
    # home gives the very same tables (rows, values, nothing left behind by any increment).
    rebuilt = copy_home(ws.settings.resolved_home, scratch / "full")
    try:
        build_all(rebuilt, at, full=True)
        assert latest_contents(rebuilt) == latest_contents(ws), "a full rebuild differs from the increments"
    finally:
        rebuilt.engine.dispose()


SETTINGS = settings(
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking: each example takes seconds
    suppress_health_check=(
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ),
)
_examples = itertools.count()


def run_example(base_home: Path, tmp_path: Path, sequence: Sequence[Step]) -> None:
    scratch = tmp_path / f"example-{next(_examples)}"
    ws = copy_home(base_home, scratch / "home")
    try:
        run_sequence(ws, scratch, sequence)
    finally:
        ws.engine.dispose()


@settings(SETTINGS, max_examples=examples(ci=2, deep=4))
@given(sequence=st.lists(step_strategy(), min_size=3, max_size=4))
def test_generated_sequences_match_the_oracle(base_home: Path, tmp_path: Path, sequence: list[Step]) -> None:
    run_example(base_home, tmp_path, sequence)


def every_kind(fraction: float, offset: int) -> tuple[Change, ...]:
    return tuple(Change(kind, offset + 3 * i, offset + 5 * i, fraction) for i, kind in enumerate(KINDS))


SEEDED = {
    # Every kind of change in every step, effective at every position in the step.
    "each-kind-each-time": [Step(every_kind(f, 17 * n), 24, False) for n, f in enumerate(FRACTIONS)],
    # Scheduled changes (effective after the build) then a quiet step in which they take effect, a
    # --full build in the middle of the increments, and backdated changes last.
    "scheduled-then-quiet": [
        Step(every_kind(1.5, 3) + every_kind(1.5, 101), 12, False),
        Step((Change("consent", 0, 0, 0.5),), 48, False),
        Step(every_kind(1.0, 7), 6, True),
        Step(every_kind(-0.5, 11), 30, False),
    ],
}


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_seeded_sequences_match_the_oracle(world: Workspace, tmp_path: Path, name: str) -> None:
    run_sequence(world, tmp_path, SEEDED[name])
