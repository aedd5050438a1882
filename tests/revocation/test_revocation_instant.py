"""One instant for a revocation (issue 11, item 0e).

A batch once re-evaluated the affected people under the policy version in force *now*: an unrelated
change (blocking another partner) withdrew a person's rows under a newer, narrower version while
everyone else kept theirs. A withdrawal now judges the affected people's facts at the batch's instant
under the policy revision and version their agreement's current release was built with, the same for
everyone; a narrower policy reaches partners as a change of its own (the next build).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from release_world import apply_policy, example_text
from revocation_world import LUMEN, RELEASED, SENTIMETRICS, TABLES, delta_rows, heavy_users, user_key_of

from datalease.policy.vocabulary import MASTER_KEY, partner_block_key
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release
from datalease.store.forget import forget_entries
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def _halting(policy: str, on: datetime) -> str:
    """The example policy plus a version from `on` that shares nothing anywhere."""
    return (
        policy.rstrip("\n")
        + f'\n  - id: "halt"\n    effective_from: {on.date().isoformat()}\n'
        + '    note: A halt of all third-party sharing.\n    rules:\n      - region: "*"\n        mechanism: excluded\n'
    )


def _rows_of(ws: Workspace, agreement: str, user: int) -> int:
    key = user_key_of(ws, agreement, user)
    return sum(1 for t in TABLES[agreement] for r in delta_rows(ws, agreement, t) if r.get("user_key") == key)


def test_an_unrelated_change_withdraws_nothing_under_a_newer_policy(home: Workspace) -> None:
    ws = home
    tomorrow = (utc_now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    apply_policy(ws, _halting(example_text("x-2024.yaml"), tomorrow))
    for agreement in RELEASED:
        build_release(ws, agreement)  # before the halt: released as usual
    bystander, opted = heavy_users(ws, SENTIMETRICS, 2, also=LUMEN)
    held = {a: _rows_of(ws, a, bystander) for a in RELEASED}
    assert all(held.values())
    # After the halt took effect: the bystander blocks a partner neither agreement belongs to, and
    # someone else opts out.
    when = tomorrow + timedelta(hours=1)
    ws.ledger.record(bystander, partner_block_key("acme"), True, at=when - timedelta(minutes=5))
    ws.ledger.record(opted, MASTER_KEY, False, at=when - timedelta(minutes=5))
    process_pending(ws, now=when)
    for agreement in RELEASED:
        assert _rows_of(ws, agreement, bystander) == held[agreement], f"{agreement}: withdrawn by accident"
        assert _rows_of(ws, agreement, opted) == 0, f"{agreement}: the opt-out was not delivered"
        with ws.session() as session:
            keys = {e.subject_key for e in forget_entries(session, agreement_id=agreement)}
        assert user_key_of(ws, agreement, bystander) not in keys
        assert user_key_of(ws, agreement, opted) in keys


def test_the_next_build_applies_the_newer_policy_to_everyone(home: Workspace) -> None:
    ws = home
    tomorrow = (utc_now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    apply_policy(ws, _halting(example_text("x-2024.yaml"), tomorrow))
    build_release(ws, LUMEN)
    assert any(delta_rows(ws, LUMEN, t) for t in TABLES[LUMEN])
    result = build_release(ws, LUMEN, at=tomorrow + timedelta(hours=1))
    assert result.full_reason is not None and "boundary" in result.full_reason
    assert not any(delta_rows(ws, LUMEN, t) for t in TABLES[LUMEN])
