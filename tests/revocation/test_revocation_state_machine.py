"""A Hypothesis state machine: releases, opt-outs, opt-ins, deleted posts, account events, revocation
batches, builds killed halfway and partner reads, in random order, against a real `datalease serve` (its worker off: the
machine runs the batches) read with the official `delta-sharing` client.

The model (independent of the project's SQL, plan and key code): after a build the partner may read
exactly what release_oracle's `expected_tables` says for the build's instant; after a batch, every row
a pending subject touches whose identity the oracle no longer allows is gone, and the forget table
gains one entry per intent whose subject had rows among them. After every step, what the partner reads
— snapshot, change feed from version 0 and from the last version checked, every version the ledger
pins (time travel), the forget table — equals the model: deletes carry keys only, replaying the feed
gives the snapshot, readable old versions hold nothing the latest does not, and no row or text of a
revoked subject comes back by any path. Reads are repeated only when a served version moved (the
answer to an unchanged version is the same answer).
"""

from __future__ import annotations

import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from release_oracle import Row
from release_world import LUMEN, run_cli
from revocation_world import (
    Base,
    Partner,
    Served,
    Subject,
    as_rows,
    copy_base,
    delta_rows,
    forget_expected,
    frame_rows,
    heavy_users,
    identity,
    oracle_now,
    released_posts_of,
    removal_carries_keys_only,
    replay,
    serve,
    strings_of,
    withdrawn,
)

from datalease.policy.vocabulary import MASTER_KEY, category_key
from datalease.revocation.worker import process_pending
from datalease.services.events import EventRejectedError, submit_events
from datalease.services.releases import build_release
from datalease.store.releases import list_releases
from datalease.workspace import Workspace
from depth import examples

# Run again with the homes on PostgreSQL (make test, README "Tests").
pytestmark = pytest.mark.postgresql_homes

TABLES = ("posts", "reposts")
OPT_OUT_KEYS = {
    MASTER_KEY: "opted_out",
    category_key("posts"): "category_opted_out",
    category_key("reposts"): "category_opted_out",
}
ACCOUNT_EVENTS = {
    "user_delete": "account_deleted",
    "user_protect": "account_protected",
    "user_suspend": "account_suspended",
}
ACTORS = 4
MAX_PENDING = 3

Feed = list[dict[str, Any]]


class RevocationMachine(RuleBasedStateMachine):
    base: ClassVar[Base]
    root: ClassVar[Path]
    actors: ClassVar[list[int]]  # users with posts and reposts in lumen's share
    posts: ClassVar[list[tuple[int, int]]]  # (author, post) released to lumen, of the actors
    examples: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        cls.examples += 1
        self.dir = cls.root / f"example-{cls.examples}"
        self.ws: Workspace = copy_base(cls.base, self.dir / "home")
        self.served: Served = serve(cls.base, self.dir / "home", self.dir)
        self.partner: Partner = self.served.partner("lumen-labs")
        with self.ws.session() as session:
            first = list_releases(session, LUMEN)[-1]
        self.shown: dict[str, Counter[Row]] = {
            t: c for t, c in oracle_now(self.ws, LUMEN, first.as_of).items() if t in TABLES
        }
        self.forget: Counter[tuple[str, str, str]] = Counter()
        self.pending: list[Subject] = []
        self.deleted_accounts: set[int] = set()
        self.revoked: dict[str, set[tuple[Any, ...]]] = {t: set() for t in TABLES}  # identities revoked
        self.revoked_texts: set[str] = set()
        self.checked: dict[str, int] = {}  # table -> the version last read in full
        self.history: dict[tuple[str, int], Counter[Row]] = {}  # (table, version) -> the model's rows
        self.changed = False  # an opt-in since the last build (a build has work)
        self.read_last = False

    def teardown(self) -> None:
        self.served.stop()
        self.ws.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- rules --------------------------------------------------------------------------------

    # Every example starts with a revocation waiting; builds and batches run only when they have
    # something to do, at most three intents wait and one opt-in per build, partner reads not twice
    # in a row: short runs still interleave.

    @initialize(actor=st.integers(0, ACTORS - 1), key=st.sampled_from(sorted(OPT_OUT_KEYS)))
    def first_opt_out(self, actor: int, key: str) -> None:
        self.opt_out(actor, key)

    @precondition(lambda self: self.pending or self.changed)
    @rule()
    def build(self) -> None:
        """A release build: it delivers pending revocations first, then releases the current state."""
        self._deliver_pending(lambda: build_release(self.ws, LUMEN).release.as_of)
        self.changed = False

    @precondition(lambda self: self.pending)
    @rule()
    def run_worker(self) -> None:
        self._deliver_pending(None)

    @precondition(lambda self: self.pending or self.changed)
    @rule(table=st.sampled_from(TABLES))
    def dead_build(self, table: str) -> None:
        """A build killed (kill -9) right after committing one table: it delivered the pending
        revocations first, and its own commits must never reach the partner by any path."""

        def killed() -> None:
            home = self.ws.settings.resolved_home
            run = run_cli(home, "release", "build", LUMEN, crashpoint=f"after_table:{table}")
            assert run.returncode == -signal.SIGKILL, run.stderr

        self._deliver_pending(killed, batch=False)

    @precondition(lambda self: len(self.pending) < MAX_PENDING)
    @rule(actor=st.integers(0, ACTORS - 1), key=st.sampled_from(sorted(OPT_OUT_KEYS)))
    def opt_out(self, actor: int, key: str) -> None:
        user = self.actors[actor]
        self.ws.ledger.record(user, key, False)
        self.pending.append(Subject("user", user, reason=OPT_OUT_KEYS[key]))
        self.read_last = False

    @precondition(lambda self: len(self.pending) < MAX_PENDING and not self.changed)
    @rule(actor=st.integers(0, ACTORS - 1), key=st.sampled_from(sorted(OPT_OUT_KEYS)))
    def opt_in(self, actor: int, key: str) -> None:
        self.ws.ledger.record(self.actors[actor], key, True)
        self.changed = True
        self.read_last = False

    @precondition(lambda self: len(self.pending) < MAX_PENDING)
    @rule(index=st.integers(0, 2 * ACTORS - 1))
    def delete_post(self, index: int) -> None:
        author, post = self.posts[index % len(self.posts)]
        event = {"type": "post_delete", "user_id": author, "post_id": post}
        if self._refused_for_deleted_account(author, event):
            return
        self.pending.append(Subject("post", author, post, reason="post_deleted"))
        self.read_last = False

    @precondition(lambda self: len(self.pending) < MAX_PENDING)
    @rule(actor=st.integers(0, ACTORS - 1), kind=st.sampled_from(sorted(ACCOUNT_EVENTS)))
    def account_event(self, actor: int, kind: str) -> None:
        user = self.actors[actor]
        if self._refused_for_deleted_account(user, {"type": kind, "user_id": user}):
            return
        self.pending.append(Subject("user", user, reason=ACCOUNT_EVENTS[kind]))
        if kind == "user_delete":
            self.deleted_accounts.add(user)
        self.read_last = False

    @precondition(lambda self: not self.read_last)
    @rule()
    def partner_reads(self) -> None:
        self.checked.clear()  # read everything again, whatever moved
        self.check_what_the_partner_reads()
        self.read_last = True

    # --- the model ----------------------------------------------------------------------------

    def _refused_for_deleted_account(self, user: int, event: dict[str, Any]) -> bool:
        if user in self.deleted_accounts:
            with pytest.raises(EventRejectedError, match=f"account {user} is already deleted"):
                submit_events(self.ws, [event])
            return True
        submit_events(self.ws, [event])
        return False

    def _deliver_pending(self, then_build: Any, *, batch: bool = True) -> None:
        """Run the batch (alone, or as the first thing a build does — one that may die before its
        release is recorded, `batch=False`) and update the model."""
        subjects, self.pending = self.pending, []
        shown = self.shown
        as_of = then_build() if then_build is not None else None
        if then_build is None and batch:
            result = process_pending(self.ws)
            assert result.intents == len(subjects)
        if subjects:
            # The batch ran first, at about the same instant as the build: the same oracle.
            allowed = oracle_now(self.ws, LUMEN, as_of)
            deleted = withdrawn(self.ws, LUMEN, shown, allowed, subjects)
            for table, rows in deleted.items():
                self.revoked[table] |= {identity(r, table) for r in rows}
                if table == "posts":
                    self.revoked_texts |= {dict(r)["text"] for r in rows if dict(r)["text"]}
                shown = {**shown, table: shown[table] - rows}
            for scope, key, reason, _rows in forget_expected(self.ws, LUMEN, deleted, subjects):
                self.forget[(scope, key, reason)] += 1
        if as_of is not None:
            shown = {t: c for t, c in oracle_now(self.ws, LUMEN, as_of).items() if t in TABLES}
        self.shown = shown
        self.read_last = False

    # --- the invariant ------------------------------------------------------------------------

    @invariant()
    def check_what_the_partner_reads(self) -> None:
        versions = {t: self.partner.version(LUMEN, t) for t in self._served_tables()}
        if all(self.checked.get(t) == v for t, v in versions.items()):
            return
        gone = {t: self.revoked[t] - {identity(r, t) for r in self.shown[t]} for t in TABLES}
        live_texts = {dict(r)["text"] for r in self.shown["posts"]}
        secret_texts = self.revoked_texts - live_texts
        for table, version in versions.items():
            strings = self._check_table(table, version, gone.get(table, set()))
            assert not strings & secret_texts, f"{table}: the text of a revoked post was served"
            self.checked[table] = version

    def _served_tables(self) -> list[str]:
        with self.ws.session() as session:
            releases = list_releases(session, LUMEN)
        has_forget = any(r.table("forget") is not None for r in releases)  # builds do not pin it
        assert has_forget == bool(self.forget), (
            f"forget table served: {has_forget}, model: {dict(self.forget)}"
        )
        return [*TABLES, "forget"] if has_forget else list(TABLES)

    def _check_table(self, table: str, version: int, gone: set[tuple[Any, ...]]) -> set[str]:
        frames: list[pd.DataFrame] = []
        snapshot = self.partner.snapshot(LUMEN, table)
        frames.append(snapshot)
        current = as_rows(frame_rows(snapshot))
        if table == "forget":
            ids = snapshot["forget_id"].tolist()
            assert len(ids) == len(set(ids)), "a forget entry listed twice"
            found = Counter((r["scope"], r["subject_key"], r["reason_code"]) for r in frame_rows(snapshot))
            assert found == self.forget, f"forget table: {found} != {self.forget}"
        else:
            assert current == self.shown[table], _difference(table, self.shown[table], current)
            assert not {identity(r, table) for r in current} & gone, f"{table}: a revoked row is served"
        self.history[(table, version)] = current

        # The change feed from version 0 replays to the snapshot, removals carry keys only, and no
        # revoked row is ever inserted again by it.
        whole = self.partner.changes(LUMEN, table, 0)
        frames.append(whole)
        feed = frame_rows(whole)
        self._check_feed(table, feed, gone)
        assert as_rows(replay({}, feed, table).values()) == current, f"{table}: replaying the feed from 0"
        previous = self.checked.get(table)
        if previous is not None and previous < version:
            recent = self.partner.changes(LUMEN, table, previous + 1)
            frames.append(recent)
            start = {identity(r, table): dict(r) for r in self.history[(table, previous)]}
            replayed = replay(start, frame_rows(recent), table)
            assert as_rows(replayed.values()) == current, f"{table}: replaying the feed from {previous + 1}"

        # Time travel: every version a release pins either is refused or holds exactly what the
        # platform committed at it, and nothing the latest version does not hold.
        with self.ws.session() as session:
            pinned = sorted(
                {
                    t.table_version
                    for r in list_releases(session, LUMEN)
                    for t in r.tables
                    if t.category == table
                }
            )
        assert pinned[-1] == version
        for old in pinned[:-1]:
            try:
                frame = self.partner.snapshot(LUMEN, table, version=old)
            except requests.HTTPError as exc:
                assert exc.response is not None and exc.response.status_code == 400, exc
                continue
            frames.append(frame)
            rows = as_rows(frame_rows(frame))
            assert rows == as_rows(delta_rows(self.ws, LUMEN, table, old)), f"{table}@{old}"
            assert not rows - current, f"{table}@{old}: serves rows the latest version no longer holds"
        return set().union(*(strings_of(f) for f in frames))

    def _check_feed(self, table: str, feed: Feed, gone: set[tuple[Any, ...]]) -> None:
        for change in feed:
            kind = change["_change_type"]
            if kind in ("delete", "update_preimage"):
                assert removal_carries_keys_only(change, table), f"{table}: a removal carries data {change}"
            else:
                assert identity(change, table) not in gone, (
                    f"{table}: the feed inserts a revoked row {change}"
                )


def _difference(table: str, expected: Counter[Row], actual: Counter[Row]) -> str:
    missing, extra = expected - actual, actual - expected
    lines = [f"{table}: {sum(missing.values())} rows missing, {sum(extra.values())} unexpected"]
    lines += [f"  missing {dict(r)}" for r in list(missing)[:3]]
    lines += [f"  unexpected {dict(r)}" for r in list(extra)[:3]]
    return "\n".join(lines)


def test_what_partners_read_follows_the_model(base: Base, tmp_path: Path) -> None:
    ws = copy_base(base, tmp_path / "probe")
    actors = heavy_users(ws, LUMEN, ACTORS)
    reposters = {dict(r)["user_key"] for r in as_rows(delta_rows(ws, LUMEN, "reposts"))}
    posts = [(a, p) for a in actors for p in released_posts_of(ws, LUMEN, a)[:2]]
    ws.engine.dispose()
    assert len(actors) == ACTORS and reposters and len(posts) >= ACTORS

    class Machine(RevocationMachine):
        pass

    Machine.base, Machine.root, Machine.actors, Machine.posts = base, tmp_path, actors, posts
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=examples(ci=3, deep=6),
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )
