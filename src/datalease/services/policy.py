"""Policy: validate, apply (history is immutable), show, diff."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from datalease.errors import UserError
from datalease.policy.diff import diff_policies, retroactive_changes
from datalease.policy.load import load_policy
from datalease.policy.model import Policy
from datalease.revocation.impact import ImpactRow
from datalease.revocation.model import BulkWithdrawal
from datalease.services.orders import narrowing_impact, record_policy_withdrawal
from datalease.store.policy_revisions import list_policy_revisions, save_policy_revision
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


@dataclass(frozen=True)
class Applied:
    revision: int | None  # None: the active policy already says this
    replaced: bool  # an earlier revision was active (the next builds are full diffs)
    # Issue 14: what the new revision withdraws from released shares, and its bulk withdrawal.
    impact: list[ImpactRow] = field(default_factory=list)
    withdrawal: BulkWithdrawal | None = None


@dataclass(frozen=True)
class Proposal:
    """A policy text checked against the active revision; nothing recorded (the console's preview,
    `policy apply --dry-run`)."""

    policy: Policy
    replaced: bool  # an earlier revision is active
    changes: list[str]  # from the active revision; [] when it already says exactly this
    starts: datetime | None  # when what it no longer allows is judged (None: nothing to judge)
    impact: list[ImpactRow] = field(default_factory=list)


def propose_policy(ws: Workspace, text: str, source: str) -> Proposal:
    """Load the text and compare it with the active revision. Versions already in force cannot be
    rewritten (add a new version with a later `effective_from`): a UserError."""
    policy = load_policy(text, source)
    ws.init()
    current = ws.active_policy()
    if current is None:
        return Proposal(policy, False, ["first revision"], None)
    problems = retroactive_changes(current, policy, utc_now())
    if problems:
        raise UserError(
            f"{source}: "
            + "; ".join(problems)
            + " — history is immutable: add a new version with a later effective_from"
        )
    changes = diff_policies(current, policy)
    if not changes:
        return Proposal(policy, True, [], None)
    # A revision that allows less is a bulk withdrawal, recorded with the revision (services/orders.py).
    now = utc_now()
    new = [v.effective_from for v in policy.versions if v not in current.versions]
    starts = max(now, min((t for t in new if t > now), default=now))  # a new version's instant
    return Proposal(policy, True, changes, starts, narrowing_impact(ws, policy, starts))


def apply_policy(
    ws: Workspace, text: str, source: str, *, actor: str = "operator", dry_run: bool = False
) -> Applied:
    """`policy apply FILE`: store the text as the active revision (`propose_policy` checks it)."""
    proposal = propose_policy(ws, text, source)
    if not proposal.changes:
        return Applied(None, True)
    if dry_run:
        return Applied(None, proposal.replaced, proposal.impact)
    policy = proposal.policy
    withdrawal = None
    with ws.write_session() as session, session.begin():
        revision = save_policy_revision(
            session, policy.name, text, hashlib.sha256(text.encode()).hexdigest(), actor
        )
        if proposal.starts is not None and any(row.rows for row in proposal.impact):
            withdrawal = record_policy_withdrawal(session, revision, proposal.starts)
    return Applied(revision, proposal.replaced, proposal.impact, withdrawal)


def policy_or_active(ws: Workspace, text: str | None, source: str) -> Policy:
    """The policy of a file's text, or the active one."""
    return load_policy(text, source) if text is not None else ws.require_policy()


@dataclass(frozen=True)
class Revision:
    id: int
    name: str
    applied_at: datetime
    applied_by: str
    policy: Policy


def revisions(ws: Workspace) -> list[Revision]:
    """Every applied revision, oldest first, parsed."""
    with ws.session() as session:
        stored = list_policy_revisions(session)
    return [
        Revision(
            r.id, r.name, r.applied_at, r.applied_by, load_policy(r.source_text, f"policy revision {r.id}")
        )
        for r in stored
    ]
