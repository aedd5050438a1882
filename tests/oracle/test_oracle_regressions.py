"""One small world per bug of issue 11 the oracle reproduced, each the shortest story the oracle and
the system once told differently; now they agree. Each asserts the whole comparison (runner.py), not
just the symptom.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from inputs import (
    AddPartner,
    ApplyPolicy,
    Build,
    ConsentChange,
    CreateAgreement,
    Curate,
    EngagementRow,
    Ingest,
    KilledBuild,
    PlatformEvent,
    PostRow,
    RecordConsent,
    RevocationBatch,
    Step,
    SubmitEvents,
    UserRow,
    World,
)
from runner import WorldRun

pytestmark = pytest.mark.oracle

T0 = datetime(2090, 1, 10, tzinfo=UTC)
POLICY = """\
policy: repro
regions:
  US: [US]
versions:
  - id: "v1"
    effective_from: 2090-01-01
    rules:
      - region: "*"
        mechanism: opt_out
      - region: "*"
        categories: [bookmarks]
        mechanism: opt_in
"""
NARROWER_FROM_FEBRUARY = """\
  - id: "v2"
    effective_from: 2090-02-01
    rules:
      - region: "*"
        mechanism: opt_out
      - region: "*"
        categories: [posts]
        mechanism: excluded
"""


def agreement(categories: str, fields: str) -> str:
    return f"""\
agreement: a1
partner: p1
status: active
term: {{start: 2090-01-01, end: 2090-12-31}}
purposes: [train_ai_system]
categories: [{categories}]
fields: {{{fields}}}
pricing: {{model: per_query, amount: "0.01", currency: USD}}
deletion_sla_hours: 24
"""


def user(user_id: int) -> UserRow:
    return UserRow(
        user_id, f"user{user_id}", "US", date(1980, 1, 1), "active", datetime(2089, 1, 1, tzinfo=UTC)
    )


def post(post_id: int, author: int, deleted_at: datetime | None = None) -> PostRow:
    text = f"zqrepro{chr(96 + post_id % 26)} a lovely morning with tea"
    return PostRow(post_id, author, text, "en", datetime(2089, 6, 1, tzinfo=UTC), "public", deleted_at)


def engaged(user_id: int, post_id: int) -> EngagementRow:
    return EngagementRow(user_id, post_id, datetime(2089, 7, 1, tzinfo=UTC), None)


def start(
    policy: str, agreement_text: str, posts: tuple[PostRow, ...], **engagement: tuple[EngagementRow, ...]
) -> list[Step]:
    steps: list[Step] = [
        ApplyPolicy(policy),
        AddPartner("p1"),
        CreateAgreement(agreement_text),
        Ingest("users", (user(1), user(2), user(3))),
        Ingest("posts", posts),
    ]
    steps += [Ingest(table, rows) for table, rows in engagement.items()]
    return [*steps, Curate()]


def run(steps: list[Step], tmp_path: Path, template: Path) -> None:
    """Fails naming every divergence between the system and the docs-only oracle."""
    world = World(0, bytes(range(32)), ("p1",), tuple(steps))
    divergences = WorldRun(world, tmp_path, template).run()
    assert not divergences, f"{world.describe()}\n" + "\n".join(str(d) for d in divergences)


def test_an_empty_table_after_one_with_files(template_home: Path, tmp_path: Path) -> None:
    """likes has a row, bookmarks none (nobody opted in): the second build registers `existing` twice."""
    steps = start(
        POLICY,
        agreement("likes, bookmarks", "likes: [created_at], bookmarks: []"),
        (post(101, 1),),
        likes=(engaged(2, 101),),
        bookmarks=(engaged(2, 101),),
    )
    run([*steps, Build("a1", T0), Build("a1", T0 + timedelta(days=1))], tmp_path, template_home)


def test_pii_types_after_a_merge(template_home: Path, tmp_path: Path) -> None:
    steps = start(POLICY, agreement("posts", "posts: [text, pii_types]"), (post(101, 1),))
    later: list[Step] = [Ingest("posts", (post(102, 2),)), Curate()]
    run(
        [*steps, Build("a1", T0), *later, Build("a1", T0 + timedelta(days=1))],
        tmp_path,
        template_home,
    )


def test_a_post_deleted_after_t_is_released_as_of_t(template_home: Path, tmp_path: Path) -> None:
    """docs/policy.md: "A record deleted after T was still live at T"."""
    steps = start(
        POLICY, agreement("posts", "posts: [text]"), (post(101, 1, deleted_at=T0 + timedelta(days=5)),)
    )
    run([*steps, Build("a1", T0), Build("a1", T0 + timedelta(days=6))], tmp_path, template_home)


def test_a_revocation_keeps_the_release_policy_version(template_home: Path, tmp_path: Path) -> None:
    """Released under v1; v2 (from February) excludes posts. User 1 opts out of likes in February: the
    batch withdraws their like; their post stays until the next build (a narrower policy is not an
    intent, docs/revocation.md)."""
    steps = start(
        POLICY + NARROWER_FROM_FEBRUARY,
        agreement("posts, likes", "posts: [text], likes: []"),
        (post(101, 1), post(102, 2)),
        likes=(engaged(1, 102),),
    )
    february = datetime(2090, 2, 5, tzinfo=UTC)
    opt_out = RecordConsent((ConsentChange(1, "share.likes", False, february),))
    run(
        [*steps, Build("a1", T0), opt_out, RevocationBatch(february + timedelta(hours=1))],
        tmp_path,
        template_home,
    )


def test_a_late_unprotect_does_not_undo_a_later_protect(template_home: Path, tmp_path: Path) -> None:
    """protect at 12:00 arrives first, unprotect at 11:00 arrives late: in event time the account is protected."""
    steps = start(POLICY, agreement("posts", "posts: [text]"), (post(101, 1), post(102, 2)))
    protect = SubmitEvents((PlatformEvent("e1", "user_protect", 1, T0 + timedelta(hours=12)),))
    unprotect = SubmitEvents((PlatformEvent("e2", "user_unprotect", 1, T0 + timedelta(hours=11)),))
    run(
        [*steps, Build("a1", T0), protect, unprotect, Build("a1", T0 + timedelta(days=1))],
        tmp_path,
        template_home,
    )


def test_two_opt_outs_of_one_person_in_one_batch_make_one_forget_entry(
    template_home: Path, tmp_path: Path
) -> None:
    steps = start(POLICY, agreement("posts", "posts: [text]"), (post(101, 1), post(102, 2)))
    opt_outs = RecordConsent(
        (
            ConsentChange(1, "share.posts", False, T0 + timedelta(hours=1)),
            ConsentChange(1, "share_with_partners", False, T0 + timedelta(hours=2)),
        )
    )
    run(
        [*steps, Build("a1", T0), opt_outs, RevocationBatch(T0 + timedelta(hours=3))],
        tmp_path,
        template_home,
    )


def test_a_killed_build_leaves_nothing_in_the_change_feed(template_home: Path, tmp_path: Path) -> None:
    """A build killed after committing posts (a real process, SIGKILL), then a revocation: the partner
    replaying the feed must end with the snapshot, without the dead build's post."""
    steps = start(
        POLICY,
        agreement("posts, likes", "posts: [text], likes: []"),
        (post(101, 1), post(102, 2)),
        likes=(engaged(2, 101),),
    )
    later: list[Step] = [Ingest("posts", (post(103, 3),)), Curate()]
    killed = KilledBuild("a1", T0 + timedelta(days=1), "after_table:posts")
    opt_out = RecordConsent((ConsentChange(2, "share_with_partners", False, T0 + timedelta(days=1)),))
    run(
        [*steps, Build("a1", T0), *later, killed, opt_out, RevocationBatch(T0 + timedelta(days=2))],
        tmp_path,
        template_home,
    )
