"""Per-post choices in the policy (issue 18): `post.<id>.ai_training = false` keeps that one post out of
training purposes in both compilers, for that post only, never for a non-training purpose, and never
through a key naming someone else's post; the key family is validated and revokes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pytest

from datalease.platform.schemas import TS
from datalease.policy.compile import Relations, compile_plan
from datalease.policy.decide import decide
from datalease.policy.model import (
    ANY,
    HardExclusions,
    Policy,
    PolicyVersion,
    RecordFacts,
    Rule,
    Scope,
    UserFacts,
)
from datalease.policy.vocabulary import (
    PURPOSES,
    Reason,
    SettingKeyError,
    post_choice_key,
    post_of_choice_key,
    revokes,
    validate_setting_key,
)

AT = datetime(2025, 6, 1, tzinfo=UTC)
POLICY = Policy(
    "p",
    ("posts",),
    PURPOSES,
    {},
    HardExclusions(),
    (PolicyVersion("v1", datetime(2024, 1, 1, tzinfo=UTC), (Rule((ANY,), (ANY,), (ANY,), "opt_out"),)),),
)
ALICE = UserFacts(1, "US", date(1980, 1, 1), "active")
BOB = UserFacts(2, "US", date(1980, 1, 1), "active")
POSTS = [
    RecordFacts("posts", ALICE, datetime(2025, 1, 1, tzinfo=UTC), post_id=10),
    RecordFacts("posts", ALICE, datetime(2025, 1, 2, tzinfo=UTC), post_id=11),
    RecordFacts("posts", BOB, datetime(2025, 1, 3, tzinfo=UTC), post_id=20),
]
# Alice refuses her post 10 and (meaninglessly) Bob's post 20; Bob says nothing.
CONSENT = {1: {post_choice_key(10): False, post_choice_key(20): False}, 2: {}}


def _compiled_allowed(scope: Scope) -> dict[int, tuple[bool, bool]]:
    con = duckdb.connect()
    con.register(
        "users",
        pa.table(
            {
                "user_id": [1, 2],
                "country": ["US", "US"],
                "birth_date": [date(1980, 1, 1)] * 2,
                "account_state": ["active"] * 2,
                "created_at": pa.array([AT, AT], TS),
            }
        ),
    )
    con.register(
        "records",
        pa.table(
            {
                "post_id": pa.array([p.post_id for p in POSTS], pa.int64()),
                "author_id": [p.owner.user_id for p in POSTS],
                "created_at": pa.array([p.created_at for p in POSTS], TS),
                "deleted_at": pa.array([None] * 3, TS),
                "visibility": ["public"] * 3,
            }
        ),
    )
    rows = [(u, k, v) for u, s in CONSENT.items() for k, v in s.items()]
    con.register(
        "consent",
        pa.table(
            {
                "user_id": pa.array([r[0] for r in rows], pa.int64()),
                "key": [r[1] for r in rows],
                "value": [r[2] for r in rows],
            }
        ),
    )
    plan = compile_plan(POLICY, scope, "posts", AT, relations=Relations(records="records"))
    sql = plan.reasons_sql(select=["r.post_id"])
    result = con.execute(sql).fetchall()
    columns = [d[0] for d in con.description]
    out = {}
    for row in result:
        got = dict(zip(columns, row, strict=True))
        out[got["post_id"]] = (got["allowed"], bool(got.get(Reason.POST_OPTED_OUT, False)))
    return out


@pytest.mark.parametrize(
    ("purpose", "refused"),
    [("train_ai_system", {10}), ("train_ai_system.generative", {10}), ("third_party_sharing", set())],
)
def test_both_compilers_keep_only_the_refused_post_out_of_training(purpose: str, refused: set[int]) -> None:
    scope = Scope(purposes=(purpose,), categories=("posts",))
    compiled = _compiled_allowed(scope)
    for post in POSTS:
        assert post.post_id is not None
        decision = decide(POLICY, post, CONSENT[post.owner.user_id], scope, AT)
        expect_out = post.post_id in refused
        assert decision.allowed is not expect_out
        assert (Reason.POST_OPTED_OUT in decision.reasons) is expect_out
        assert compiled[post.post_id] == (not expect_out, expect_out)


def test_the_key_family_is_validated_and_revokes_only_when_refused() -> None:
    assert validate_setting_key("post.42.ai_training") == "post.42.ai_training"
    assert post_of_choice_key("post.42.ai_training") == 42
    for bad in (
        "post.abc.ai_training",
        "post.42",
        "post..ai_training",
        "post.042.ai_training",
        f"post.{2**63}.ai_training",
    ):
        assert post_of_choice_key(bad) is None
        with pytest.raises(SettingKeyError, match=r"post\.<post_id>\.ai_training"):
            validate_setting_key(bad)
    assert revokes("post.42.ai_training", False)
    assert not revokes("post.42.ai_training", True)
