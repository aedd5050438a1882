"""The bulk worker: delivers bulk withdrawals chunk by chunk, on a thread of its own.

For each pending withdrawal and each agreement it reaches, the doomed rows (bulk_plan.py) are deleted
in chunks of at most `DATALEASE_BULK_CHUNK_ROWS` (default and maximum one million) rows, sized so that
each holds the share's lock about `DATALEASE_BULK_CHUNK_SECONDS` (chunks.py): each chunk is one Delta
commit and one pinned `revocation` release, recorded with the chunk's row count in one transaction,
under the share's lock taken per chunk — a single revocation batch (the other worker's thread)
waiting for it goes next (the lock is handed over in turn, store/locks.py), so single opt-outs wait
for one short chunk at most and never queue behind a whole withdrawal. When the agreement's tables hold
no doomed row any more, one forget entry (scope `region` or `agreement`, the reason code, deadline =
request + the agreement's deletion SLA) is written to the share's forget table and the store, with the
delivery marked complete, in one transaction.

kill -9 at any point: the next run recomputes the doomed rows against the tables as they are (a chunk
committed but not recorded is adopted and its rows counted into the next pinned release), the forget
entry's id is deterministic and the forget table skips entries it holds, so the withdrawal completes
exactly once. Crash points: `bulk:before_commit`, `bulk:after_commit`, `bulk:before_forget`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from datalease.faults import crashpoint
from datalease.licensing.model import Agreement
from datalease.licensing.registry import get_agreement
from datalease.policy.load import load_revision
from datalease.policy.model import Policy
from datalease.policy.orders import with_orders
from datalease.releases import delta
from datalease.releases.model import KIND_REVOCATION, Release, ReleaseTable
from datalease.revocation import forget_table
from datalease.revocation.background import DEFAULT_WINDOW_S, BackgroundLoop
from datalease.revocation.bulk_plan import (
    EVERYTHING,
    NARROWED,
    chunk_sql,
    doomed_rows,
    open_session,
    people_in,
)
from datalease.revocation.chunks import ChunkSizer, chunk_end
from datalease.revocation.model import BulkWithdrawal, ForgetEntry
from datalease.revocation.subjects import forget_id
from datalease.revocation.withdraw import undo_dead_builds
from datalease.store.bulk import (
    complete_delivery,
    complete_withdrawal,
    count_chunk,
    delivered_to,
    list_withdrawals,
    pending_withdrawals,
    progress_of,
    record_bulk_withdrawal,
)
from datalease.store.forget import add_forget_entries
from datalease.store.licensing import list_agreements
from datalease.store.orders import list_orders
from datalease.store.policy_revisions import get_policy_revision
from datalease.store.releases import latest_release, record_release
from datalease.store.revocation import record_delivery
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

MAX_CHUNK_ROWS = 1_000_000
log = logging.getLogger("datalease.revocation.bulk")


@dataclass(frozen=True)
class BulkResult:
    withdrawals: int  # completed in this run
    rows_removed: int
    chunks: int


def mode_of(withdrawal: BulkWithdrawal) -> str:
    return EVERYTHING if withdrawal.kind in ("termination", "term_end") else NARROWED


def countries_of(withdrawal: BulkWithdrawal) -> list[str] | None:
    """An order's countries (None: everyone, for a narrower policy)."""
    if withdrawal.kind != "order":
        return None
    return list(json.loads(withdrawal.detail or "{}").get("countries", []))


def targets(ws: Workspace, withdrawal: BulkWithdrawal) -> list[str]:
    """The agreements the withdrawal reaches: its own, or every one that has released data."""
    with ws.session() as session:
        if withdrawal.agreement_id is not None:
            return [withdrawal.agreement_id] if latest_release(session, withdrawal.agreement_id) else []
        return [r.agreement_id for r in list_agreements(session) if latest_release(session, r.agreement_id)]


def release_policy(ws: Workspace, previous: Release, revision_id: int | None = None) -> Policy:
    """The policy revision the release was built with (or `revision_id`: a narrower revision), with
    the regulator orders now recorded."""
    wanted = previous.policy_revision_id if revision_id is None else revision_id
    with ws.session() as session:
        revision = get_policy_revision(session, wanted)
        orders = list_orders(session)
    if revision is None:
        raise RuntimeError(f"policy revision {wanted} is missing from the store")
    return with_orders(load_revision(revision.id, revision.source_text), orders)


def revision_of(withdrawal: BulkWithdrawal) -> int | None:
    """A narrower policy's revision (None for other kinds)."""
    if withdrawal.kind != "policy":
        return None
    return int(json.loads(withdrawal.detail)["revision"])


def process_bulk(
    ws: Workspace, *, now: datetime | None = None, max_chunks: int | None = None, term_ends: bool = True
) -> BulkResult:
    """Deliver pending bulk withdrawals (all of them, or stop after `max_chunks` chunks); first record
    the term ends that have passed (`term_ends`; a build delivering what is pending does not)."""
    with ws.bulk_lock():  # two workers never deliver the same withdrawal's chunks
        return _process_bulk(ws, now=now, max_chunks=max_chunks, term_ends=term_ends)


def _process_bulk(
    ws: Workspace, *, now: datetime | None, max_chunks: int | None, term_ends: bool
) -> BulkResult:
    when = now or utc_now()
    size = max(1, min(MAX_CHUNK_ROWS, ws.settings.bulk_chunk_rows))
    completed = rows = chunks = 0
    if term_ends:
        record_term_ends(ws, when)
    with ws.session() as session:
        pending = pending_withdrawals(session, now=when)
    for withdrawal in pending:
        reached = targets(ws, withdrawal)
        with ws.session() as session:
            done = delivered_to(session, [withdrawal.withdrawal_id])
        for agreement_id in reached:
            if (withdrawal.withdrawal_id, agreement_id) in done:
                continue
            budget = None if max_chunks is None else max_chunks - chunks
            if budget is not None and budget <= 0:
                return BulkResult(completed, rows, chunks)
            removed, committed, finished = deliver(ws, withdrawal, agreement_id, when, size, budget)
            rows += removed
            chunks += committed
            if not finished:
                return BulkResult(completed, rows, chunks)
        with ws.write_session() as session, session.begin():
            complete_withdrawal(session, withdrawal.withdrawal_id, utc_now())
        completed += 1
    return BulkResult(completed, rows, chunks)


def record_term_ends(ws: Workspace, now: datetime) -> list[BulkWithdrawal]:
    """An agreement whose term has ended (not terminated) and whose share holds data: record its
    `term_end` withdrawal — once — emptying the share like a termination; it closes at term end +
    the deletion SLA."""
    with ws.session() as session:
        due = [
            r
            for r in list_agreements(session)
            if r.term_end <= now and r.status != "terminated" and latest_release(session, r.agreement_id)
        ]
        if not due:
            return []
        ended = {w.agreement_id for w in list_withdrawals(session) if w.kind in ("term_end", "termination")}
    due = [r for r in due if r.agreement_id not in ended]
    policy = ws.active_policy()
    if not due or policy is None:
        return []
    recorded: list[BulkWithdrawal] = []
    with ws.write_session() as session, session.begin():
        ended = {w.agreement_id for w in list_withdrawals(session) if w.kind in ("term_end", "termination")}
        for record in due:
            if record.agreement_id in ended:
                continue
            agreement = get_agreement(session, record.agreement_id, policy)
            recorded.append(
                record_bulk_withdrawal(
                    session,
                    kind="term_end",
                    scope="agreement",
                    subject=record.agreement_id,
                    reference=f"term ended {record.term_end.isoformat()}",
                    agreement_id=record.agreement_id,
                    detail=json.dumps({"term_end": record.term_end.isoformat()}),
                    at=record.term_end,
                    closes_at=record.term_end + timedelta(hours=agreement.deletion_sla_hours),
                )
            )
    return recorded


def deliver(
    ws: Workspace,
    withdrawal: BulkWithdrawal,
    agreement_id: str,
    when: datetime,
    size: int,
    budget: int | None = None,
) -> tuple[int, int, bool]:
    """One agreement's part: (rows removed, chunks committed, finished)."""
    directory = ws.share_dir(agreement_id)
    with ws.share_lock(agreement_id), ws.session() as session:
        previous = latest_release(session, agreement_id)
        assert previous is not None
        undo_dead_builds(directory, previous)
    revision = revision_of(withdrawal)
    policy = release_policy(ws, previous, revision)
    with ws.session() as session:
        agreement = get_agreement(session, agreement_id, policy)
    countries = countries_of(withdrawal)
    people = people_in(ws.lake, countries) if countries is not None else None
    removed = committed = 0
    with open_session(ws, when) as diff:
        doomed = doomed_rows(
            ws,
            diff,
            mode=mode_of(withdrawal),
            policy=policy,
            agreement=agreement,
            previous=previous,
            at=when,
            people=people,
            policy_at=when if revision is not None else None,
        )
        info = delta.commit_info(agreement_id, KIND_REVOCATION, batch=f"bulk {withdrawal.withdrawal_id}")
        sizer = ChunkSizer(size, ws.settings.bulk_chunk_seconds)
        for table in doomed:
            low = 1
            while low <= table.rows:
                if budget is not None and committed >= budget:
                    return removed, committed, False
                high = chunk_end(table.bucket_ends, low, sizer.rows, size)
                with ws.share_lock(agreement_id):
                    held_from = time.perf_counter()
                    delta.rewrite(
                        table.path,
                        diff.con,
                        chunk_sql(table, low, high),
                        table.columns,
                        table.identity,
                        commit_info=info,
                    )
                    crashpoint("bulk:before_commit")
                    removed += _pin(ws, withdrawal, agreement_id)
                    crashpoint("bulk:after_commit")
                    held = time.perf_counter() - held_from
                sizer.observe(high - low + 1, held)
                log.info(
                    "bulk %d, %s: %d rows of %s in %.2f s under the share lock",
                    withdrawal.withdrawal_id,
                    agreement_id,
                    high - low + 1,
                    table.category,
                    held,
                )
                low = high + 1
                committed += 1
    with ws.share_lock(agreement_id):
        removed += _pin(ws, withdrawal, agreement_id)  # a dead chunk's commit with nothing left after it
        crashpoint("bulk:before_forget")
        _finish(ws, withdrawal, agreement)
    return removed, committed, True


def _pin(ws: Workspace, withdrawal: BulkWithdrawal, agreement_id: str) -> int:
    """Record a revocation release pinning every table as it now stands, and count the rows it removed
    (against the previous pinned release) into the withdrawal — in one transaction. Caller holds the
    share lock."""
    directory = ws.share_dir(agreement_id)
    with ws.write_session() as session, session.begin():
        previous = latest_release(session, agreement_id)
        assert previous is not None
        tables = []
        for pinned in previous.tables:
            path = directory / pinned.category
            version = delta.table_version(path)
            if version is None or version == pinned.table_version:
                tables.append(replace(pinned, rows_added=0, rows_removed=0, files_added=0, files_removed=0))
                continue
            total = delta.row_count(path)
            tables.append(
                ReleaseTable(pinned.category, version, total, 0, max(0, pinned.rows_total - total), 0, 0)
            )
        removed = sum(t.rows_removed for t in tables)
        if removed == 0 and all(
            t.table_version == p.table_version for t, p in zip(tables, previous.tables, strict=True)
        ):
            return 0
        record_release(
            session,
            replace(
                previous,
                release_id=0,
                built_at=utc_now(),
                kind=KIND_REVOCATION,
                full_build=False,
                duration_ms=0,
                excluded={},
                tables=tuple(tables),
            ),
        )
        count_chunk(session, withdrawal.withdrawal_id, agreement_id, removed)
    return removed


def forget_entry(withdrawal: BulkWithdrawal, agreement: Agreement, rows: int, at: datetime) -> ForgetEntry:
    """The whole-scope entry: forget every row (and what was derived from it) of the region or share."""
    return ForgetEntry(
        forget_id=forget_id(
            agreement.agreement_id, withdrawal.intent_id, withdrawal.scope, withdrawal.subject
        ),
        agreement_id=agreement.agreement_id,
        partner=agreement.partner,
        intent_id=withdrawal.intent_id,
        release_id=0,
        scope=withdrawal.scope,
        subject_key=withdrawal.subject,
        rows=rows,
        reason_code=withdrawal.reason_code,
        requested_at=withdrawal.requested_at,
        delivered_at=at,
        deadline=withdrawal.requested_at + timedelta(hours=agreement.deletion_sla_hours),
        acked_at=None,
        certificate=None,
    )


def _finish(ws: Workspace, withdrawal: BulkWithdrawal, agreement: Agreement) -> None:
    """Write the forget entry into the share and the store, and mark this delivery complete."""
    agreement_id = agreement.agreement_id
    directory = ws.share_dir(agreement_id)
    with ws.session() as session:
        previous = latest_release(session, agreement_id)
        progress = [
            p for p in progress_of(session, withdrawal.withdrawal_id) if p.agreement_id == agreement_id
        ]
    assert previous is not None
    rows = progress[0].rows_deleted if progress else 0
    at = utc_now()
    entry = forget_entry(withdrawal, agreement, rows, at)
    path = directory / forget_table.TABLE
    info = delta.commit_info(agreement_id, KIND_REVOCATION, batch=f"bulk {withdrawal.withdrawal_id}")
    version = forget_table.write_forget(path, [entry], info)
    tables = [t for t in previous.tables if t.category != forget_table.TABLE]
    tables = [replace(t, rows_added=0, rows_removed=0, files_added=0, files_removed=0) for t in tables]
    tables.append(ReleaseTable(forget_table.TABLE, version, forget_table.row_count(path), 1, 0, 1, 0))
    with ws.write_session() as session, session.begin():
        release_id = record_release(
            session,
            replace(
                previous,
                release_id=0,
                built_at=at,
                kind=KIND_REVOCATION,
                full_build=False,
                duration_ms=0,
                excluded={},
                tables=tuple(tables),
            ),
        )
        add_forget_entries(session, [replace(entry, release_id=release_id)])
        record_delivery(session, withdrawal.intent_id, agreement_id, release_id, 1, at)
        complete_delivery(session, withdrawal.withdrawal_id, agreement_id, at)


class BulkLoop(BackgroundLoop):
    """The bulk worker's own thread: one chunk at a time while withdrawals are pending."""

    name = "datalease-bulk-withdrawals"
    join_timeout_s = 60.0  # a chunk under way (≤ 1M rows) finishes

    def __init__(
        self,
        ws: Workspace,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        super().__init__()
        self.ws = ws
        self.window_s = window_s
        self.on_error = on_error

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = process_bulk(self.ws)
                if result.chunks:
                    log.info("bulk withdrawals: %d rows in %d chunks", result.rows_removed, result.chunks)
            except Exception as exc:  # keep serving; the withdrawal stays pending and is retried
                log.exception("bulk withdrawal delivery failed")
                if self.on_error is not None:
                    self.on_error(exc)
            self._stop.wait(self.window_s)
