"""The system's known bugs (issue 11), and which of them explain a world's divergences.

Some are told by their signature (an exception, a failing answer). The others are modelled: a variant
of the oracle that does what the bug does; a divergence is explained by the smallest set of modelled
bugs whose variant expects exactly what the partner saw. This is for the failure message and for
`classify.py` (which writes KNOWN_FAILURES of test_oracle_worlds.py); the oracle itself never models a
bug.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import combinations
from typing import Any

from docs_oracle import (
    ACCOUNT_EVENTS,
    CONTENT_EVENTS,
    COUNTRY_EVENT,
    ForgetExpected,
    Intent,
    Oracle,
    Platform,
    Share,
)
from inputs import Build, KilledBuild, UserRow, World
from runner import (
    CLIENT,
    FEED,
    FORGET,
    LISTING,
    RAISED,
    REVOKED_TEXT,
    SNAPSHOT,
    Divergence,
    expected_rows,
    expected_tables,
    hashable,
)

CATALOG = "catalog-view-exists"
STRING_VIEW = "string-view-pii-types"
DELETED_POSTS = "deleted-posts-never-curated"
CURRENT_VERSION = "revocation-under-current-version"
ARRIVAL_ORDER = "events-in-arrival-order"
FORGET_PER_INTENT = "forget-entry-per-intent"
DEAD_COMMITS = "dead-build-commits-in-changes"

BUGS = {
    CATALOG: 'a build of an agreement whose earlier table has files and a later one none fails with CatalogException: View with name "existing" already exists (revocation batches too)',
    STRING_VIEW: "delta-rs merges write string_view columns: load_as_pandas breaks on list<string_view> pii_types, /changes answers 500 on posts tables with pii_types",
    DELETED_POSTS: "posts with any deleted_at (even in the future) are never curated, so never released",
    CURRENT_VERSION: "revocations evaluate under the policy version in force now, not the release's",
    ARRIVAL_ORDER: "late platform events apply in arrival order instead of event time",
    FORGET_PER_INTENT: "the same subject revoked several times in a batch gets several forget entries",
    DEAD_COMMITS: "a dead build's commits show in /changes",
}
MODELLED = (DELETED_POSTS, CURRENT_VERSION, ARRIVAL_ORDER, FORGET_PER_INTENT)


@dataclass
class BuggyPlatform(Platform):
    bugs: frozenset[str] = frozenset()
    applied: list[int] = field(default_factory=list)  # len(events) at each batch: what reached the lake

    def user(self, user_id: int) -> UserRow:
        if ARRIVAL_ORDER not in self.bugs:
            return super().user(user_id)
        row = self.users[user_id]
        for event in self.events:  # the last to arrive wins
            if event.user_id != user_id:
                continue
            if event.type in ACCOUNT_EVENTS:
                row = replace(row, account_state=ACCOUNT_EVENTS[event.type][0])
            elif event.type == COUNTRY_EVENT and event.country is not None:
                row = replace(row, country=event.country)
        return row

    def deletion(self, table: str, ids: tuple[int, ...], ingested: datetime | None) -> datetime | None:
        if ARRIVAL_ORDER not in self.bugs:
            return super().deletion(table, ids, ingested)
        if ingested is not None:
            return ingested
        kinds = {t: kind for kind, (t, _reason) in CONTENT_EVENTS.items()}
        start = 0
        for end in [*self.applied, len(self.events)]:  # the first batch that wrote one wins, its last
            times = [
                e.at
                for e in self.events[start:end]
                if e.type == kinds[table]
                and (e.post_id,) == ids[-1:]
                and (table == "posts" or e.user_id == ids[0])
            ]
            if times:
                return times[-1]
            start = end
        return None

    def lake_deleted(self, post_id: int) -> bool:
        """Whether the lake's post row has a deleted_at (events reach the lake at batches)."""
        post = self.posts[post_id]
        if post.deleted_at is not None:
            return True
        written = self.events[: self.applied[-1]] if self.applied else []
        return any(e.type == "post_delete" and e.post_id == post_id for e in written)

    def curate(self) -> None:
        if DELETED_POSTS not in self.bugs:
            super().curate()
            return
        for post in self.posts.values():
            if self.lake_deleted(post.post_id):
                self.curated.pop(post.post_id, None)
            else:
                self.curated[post.post_id] = post.text


class BuggyOracle(Oracle):
    def __init__(self, master_key: bytes, bugs: frozenset[str]) -> None:
        super().__init__(master_key)
        self.bugs = bugs
        self.platform = BuggyPlatform(bugs=bugs)

    def batch(self, now: datetime) -> None:
        assert isinstance(self.platform, BuggyPlatform)
        self.platform.applied.append(len(self.platform.events))
        super().batch(now)

    def _withdraw(self, share: Share, due: list[Intent], now: datetime, rules_at: datetime) -> None:
        super()._withdraw(share, due, now, now if CURRENT_VERSION in self.bugs else rules_at)

    def _forget(
        self, share: Share, due: list[Intent], deleted: Mapping[str, list[dict[str, Any]]]
    ) -> list[ForgetExpected]:
        if FORGET_PER_INTENT not in self.bugs:
            return super()._forget(share, due, deleted)
        out: list[ForgetExpected] = []
        for intent in due:
            out += super()._forget(share, [intent], deleted)
        return out


class Replays:
    """One (buggy) oracle per set of bugs, advanced step by step (the same failed builds counted dead)."""

    def __init__(self, world: World, failed: set[int]) -> None:
        self.world, self.failed = world, failed
        self.oracles: dict[frozenset[str], tuple[Oracle, int]] = {}

    def at(self, bugs: frozenset[str], step: int) -> Oracle:
        """The oracle of `bugs` after steps 0..step (steps are asked for in increasing order)."""
        oracle, done = self.oracles.get(bugs) or (BuggyOracle(self.world.master_key, bugs), 0)
        for index in range(done, step + 1):
            current = self.world.steps[index]
            if index in self.failed and isinstance(current, Build):
                oracle.apply_failed_build(current)
            else:
                oracle.apply(current)
        self.oracles[bugs] = (oracle, max(done, step + 1))
        return oracle


def _matches(oracle: Oracle, divergence: Divergence) -> bool:
    share = oracle.shares.get(divergence.share or "")
    observed: object = divergence.observed
    if divergence.kind == SNAPSHOT and share is not None and divergence.table:
        return Counter(hashable(r) for r in expected_rows(share, divergence.table)) == observed
    if divergence.kind == FORGET and share is not None and observed is not None:
        return Counter(hashable(r) for r in expected_rows(share, "forget")) == observed
    if divergence.kind == LISTING:
        partner = divergence.what.split(" ", 1)[0]
        return frozenset(expected_tables(oracle, partner)) == observed
    if divergence.kind == REVOKED_TEXT and share is not None:
        return not (share.revoked_texts() & set(divergence.observed or ()))
    return False


def explain(world: World, divergences: list[Divergence]) -> list[set[str]]:
    """For each divergence, the known bugs that explain it (empty: nothing known does)."""
    failed = {d.step for d in divergences if d.kind == RAISED and isinstance(world.steps[d.step], Build)}
    dead_shares = {
        step.agreement_id
        for index, step in enumerate(world.steps)
        if (isinstance(step, KilledBuild) and step.crashpoint != "after_ledger")
        or (index in failed and isinstance(step, Build))
    }
    replays = Replays(world, failed)
    out = []
    for d in divergences:
        if d.kind == RAISED:
            out.append({CATALOG} if 'View with name "existing" already exists' in d.what else set())
        elif d.kind == CLIENT:
            out.append({STRING_VIEW} if d.table == "posts" and _has_pii_types(world, d.share) else set())
        elif d.kind == FEED:
            out.append({DEAD_COMMITS} if d.share in dead_shares else set())
        else:
            out.append(_modelled(d, replays))
    return out


def _modelled(d: Divergence, replays: Replays) -> set[str]:
    if d.observed is None:
        return set()
    for size in range(1, len(MODELLED) + 1):
        for bugs in combinations(MODELLED, size):
            if _matches(replays.at(frozenset(bugs), d.step), d):
                return set(bugs)
    return set()


def _has_pii_types(world: World, share: str | None) -> bool:
    return any(
        getattr(s, "text", "").startswith(f"agreement: {share}\n") and "pii_types" in getattr(s, "text", "")
        for s in world.steps
    )


def summary(world: World, divergences: list[Divergence]) -> str:
    explained = explain(world, divergences)
    lines = []
    for d, bugs in zip(divergences, explained, strict=True):
        lines.append(f"[{', '.join(sorted(bugs)) or 'NOT A KNOWN BUG'}] {d}")
    return "\n".join(lines)


def bugs_of(world: World, divergences: list[Divergence]) -> tuple[set[str], bool]:
    """The known bugs the world shows, and whether every divergence is explained by one."""
    explained = explain(world, divergences)
    return set().union(*explained) if explained else set(), all(explained)
