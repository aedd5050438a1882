"""Releases: build (after delivering what is pending), list, show, optimize, purge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from datalease.errors import UserError
from datalease.licensing.registry import get_agreement
from datalease.releases.build import BuildResult, build
from datalease.releases.changes import Withheld
from datalease.releases.engines import engine_name
from datalease.releases.model import Release
from datalease.releases.optimize import OptimizeResult, optimize
from datalease.revocation.bulk import process_bulk
from datalease.revocation.subjects import affected_ids, subject_of
from datalease.revocation.worker import process_pending, require_delivered
from datalease.services.provenance import check_build_allowed
from datalease.sharing.purge import PurgeResult, purge_table
from datalease.store.licensing import get_agreement_record, list_agreements
from datalease.store.releases import get_release, list_releases
from datalease.store.revocation import intents_late_for, last_intent_id
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def build_release(
    ws: Workspace,
    agreement_id: str,
    *,
    at: datetime | None = None,
    full: bool = False,
    on_step: Callable[[str], None] | None = None,
    engine: str | None = None,
) -> BuildResult:
    """`release build`: deliver the pending revocations first (so their forget entries are never
    skipped by a build that would withdraw the same rows), refuse while this agreement's deliveries
    fail, then build — holding back the rows of anyone revoked while the build runs.

    The mark is read before the build's instant is fixed, so an intent recorded while the pending
    ones are delivered is above it; what is held back: store.revocation.intents_late_for."""
    with ws.session() as session:
        mark = last_intent_id(session)
    when = at or utc_now()
    engine_name(engine or ws.settings.engine)  # an unknown engine is refused before anything is written
    process_pending(ws, now=when)
    process_bulk(ws, now=when, term_ends=False)  # bulk withdrawals first: revocation/bulk.py
    require_delivered(ws, agreement_id, when)
    check_build_allowed(ws, agreement_id)  # a lapsed attestation; overdue models (issue 18)
    return build(
        ws,
        agreement_id,
        at=when,
        full=full,
        on_step=on_step,
        withheld=lambda previous: revoked_late(ws, agreement_id, mark, previous),
        engine=engine,
    )


def optimize_release(ws: Workspace, agreement_id: str) -> OptimizeResult:
    """`release optimize`: deliver what is pending (a batch would otherwise wait on the lock and find
    the tables moved), then compact the share's small files."""
    with ws.session() as session:
        get_agreement_record(session, agreement_id)
    process_pending(ws)
    return optimize(ws, agreement_id)


def revoked_late(ws: Workspace, agreement_id: str, mark: int, previous: int) -> Withheld:
    """The people, posts and engagement rows a build diffing against release `previous` must hold
    back (store.revocation.intents_late_for)."""
    with ws.session() as session:
        intents = intents_late_for(session, agreement_id, after_id=mark, after_release=previous)
        late = affected_ids([subject_of(i) for i in intents])
    pairs = tuple(pair for table in late.engagement.values() for pair in table)
    return Withheld(late.users, late.posts, pairs)


def releases(ws: Workspace, agreement_id: str | None = None) -> list[Release]:
    with ws.session() as session:
        return list_releases(session, agreement_id)


def release(ws: Workspace, release_id: int) -> Release:
    with ws.session() as session:
        found = get_release(session, release_id)
    if found is None:
        raise UserError(f"release {release_id}: no such release (see `datalease release list`)")
    return found


@dataclass(frozen=True)
class TablePurge:
    agreement_id: str
    retention_days: int
    result: PurgeResult


def purge(ws: Workspace, agreement_id: str | None = None, *, now: datetime | None = None) -> list[TablePurge]:
    """Delete the files of superseded versions older than each agreement's retention window."""
    policy = ws.require_policy()
    when = now or utc_now()
    with ws.session() as session:
        ids = [agreement_id] if agreement_id else [r.agreement_id for r in list_agreements(session)]
        agreements = [get_agreement(session, i, policy) for i in ids]
    done = []
    for agreement in agreements:
        retention = timedelta(days=agreement.retention_days)
        for category in agreement.categories:
            result = purge_table(
                ws.table_dir(agreement.agreement_id, category),
                ws.sharing_cache_dir(agreement.agreement_id, category),
                retention=retention,
                now=when,
            )
            done.append(TablePurge(agreement.agreement_id, agreement.retention_days, result))
    return done
