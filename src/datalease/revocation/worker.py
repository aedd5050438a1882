"""The revocation worker: pending intents → per-agreement deletes, forget entries, a pinned release.

A batch first writes the platform events whose time has come into the lake (folded in event time),
then, for each agreement that has released data, takes the intents in effect that the agreement has
not had delivered yet and — under the share's lock — withdraws the affected rows (the release plan's
own diff, deletes only), records one forget entry per subject whose rows it withdrew, and commits a
`revocation` release with the deliveries in one transaction. Intents are marked processed once every
agreement has its delivery, so a worker killed at any point and restarted completes each revocation
exactly once: delivered (intent, agreement) pairs are skipped, commits of a dead batch are adopted,
forget ids are deterministic.

Each agreement is delivered on its own: one whose delivery fails (a broken table, a full disk) is
recorded in `revocation_failures` with its error and since when — shown by `datalease compliance`,
the operator console and `/health` (503), logged by the server — and retried with a growing pause,
while every other agreement keeps receiving its revocations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from datalease.consent.snapshot import ConsentSnapshot, consent_snapshot
from datalease.errors import UserError
from datalease.faults import crashpoint
from datalease.licensing.model import Agreement
from datalease.licensing.registry import get_agreement
from datalease.platform.events import PlatformEvent, apply_events
from datalease.policy.load import load_revision
from datalease.policy.model import Policy
from datalease.releases import delta
from datalease.releases.keys import agreement_secret
from datalease.releases.model import KIND_REVOCATION, ReleaseTable
from datalease.revocation import forget_table
from datalease.revocation.background import DEFAULT_WINDOW_S, BackgroundLoop
from datalease.revocation.claims import claim_rows
from datalease.revocation.intent_claim import Claim, claimed_intents
from datalease.revocation.model import DeliveryFailure, ForgetEntry, Intent
from datalease.revocation.subjects import Subject, affected_ids, forget_id, subject_of
from datalease.revocation.withdraw import Withdrawn, withdraw
from datalease.store.forget import add_forget_entries
from datalease.store.licensing import list_agreements
from datalease.store.platform_events import due_events, events_in_effect, mark_events_applied
from datalease.store.policy_revisions import get_policy_revision
from datalease.store.releases import latest_release, record_release
from datalease.store.revocation import (
    clear_failure,
    delivered_agreements,
    delivery_failures,
    record_delivery,
    record_failure,
    undelivered_intents,
)
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

# A failing agreement is retried after 1 s, 2 s, 4 s … at most a minute apart.
MAX_BACKOFF_S = 60.0
log = logging.getLogger("datalease.revocation")


@dataclass(frozen=True)
class BatchResult:
    intents: int  # intents now delivered to every agreement (marked processed)
    agreements: int  # agreements from which this batch withdrew rows
    rows_removed: int
    forget_entries: int
    duration_ms: int
    failures: tuple[DeliveryFailure, ...] = ()  # agreements whose delivery failed in this batch


def process_pending(
    ws: Workspace, *, now: datetime | None = None, limit: int = 10_000, respect_backoff: bool = False
) -> BatchResult:
    """One batch. `respect_backoff` (the background loop) skips failing agreements until their pause
    is over, and on PostgreSQL passes over intents another batch has claimed; a command run by a
    person (or a build) retries failing agreements at once and waits for other batches' claims."""
    started = time.perf_counter()
    when = now or utc_now()
    # Every event reaches the lake, those that withdraw nothing too (user_unprotect, …): the next
    # build reads the account as it now is.
    apply_due_events(ws, when)
    with claimed_intents(ws, when, limit, skip_locked=respect_backoff) as claim:
        return _batch(ws, claim, when, limit, respect_backoff, started)


def _batch(
    ws: Workspace, claim: Claim, when: datetime, limit: int, respect_backoff: bool, started: float
) -> BatchResult:
    if claim.ids == []:  # PostgreSQL: nothing pending that another batch does not hold
        return BatchResult(0, 0, 0, 0, int((time.perf_counter() - started) * 1000))
    with ws.session() as session:
        records = [r for r in list_agreements(session) if latest_release(session, r.agreement_id) is not None]
        failing = {f.agreement_id: f for f in delivery_failures(session)}
    due: list[tuple[str, DeliveryFailure | None, list[Intent]]] = []
    for record in records:
        failure = failing.get(record.agreement_id)
        if respect_backoff and failure is not None and when < failure.last_at + _backoff(failure.attempts):
            continue
        with ws.session() as session:
            todo = undelivered_intents(session, record.agreement_id, when, limit, claim.ids)
        if todo:
            due.append((record.agreement_id, failure, todo))
    agreements = rows = entries = 0
    failures: list[DeliveryFailure] = []
    # Every agreement's facts at the batch's instant, read once (and early: an event recorded after
    # `when` would send a later read down the slower as-of path).
    snapshot = consent_snapshot(ws.engine, when) if due else None
    delivered = _deliver_each(ws, due, snapshot) if snapshot is not None else []
    for (agreement_id, failure, _), outcome in zip(due, delivered, strict=True):
        if isinstance(outcome, Exception):  # one agreement's failure must not stop the others' revocations
            failures.append(_failed(ws, agreement_id, outcome, first=failure is None))
            continue
        removed, added = outcome
        if failure is not None:
            with ws.write_session() as session, session.begin():
                clear_failure(session, agreement_id)
            log.warning("revocation deliveries to %s work again", agreement_id)
        agreements += removed > 0 or added > 0
        rows += removed
        entries += added
    crashpoint("revoke:before_mark")
    processed = claim.mark_delivered([r.agreement_id for r in records], utc_now())
    return BatchResult(
        processed, agreements, rows, entries, int((time.perf_counter() - started) * 1000), tuple(failures)
    )


def _deliver_each(
    ws: Workspace, due: Sequence[tuple[str, DeliveryFailure | None, list[Intent]]], snapshot: ConsentSnapshot
) -> list[tuple[int, int] | Exception]:
    """Each agreement's delivery, up to `DATALEASE_REVOCATION_PARALLEL` at once: each holds its own
    share's lock, and its scans and rewrites (DuckDB, Arrow, delta-rs) run mostly without the GIL, so
    deliveries overlap as far as the cores allow (two agreements on 2 cores at 1M users / 10M posts:
    a batch 2.1 → 1.9 s; DuckDB already uses both cores for one)."""

    def one(item: tuple[str, DeliveryFailure | None, list[Intent]]) -> tuple[int, int] | Exception:
        agreement_id, _, todo = item
        try:
            return _deliver(ws, agreement_id, todo, snapshot)
        except Exception as exc:  # reported per agreement by the caller
            return exc

    parallel = min(ws.settings.revocation_parallel, len(due))
    if parallel <= 1:
        return [one(item) for item in due]
    with ThreadPoolExecutor(parallel, thread_name_prefix="revocation-delivery") as pool:
        return list(pool.map(one, due))


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)))


def _failed(ws: Workspace, agreement_id: str, exc: Exception, *, first: bool) -> DeliveryFailure:
    text = f"{type(exc).__name__}: {exc}"
    with ws.write_session() as session, session.begin():
        failure = record_failure(session, agreement_id, text, utc_now())
    message = "revocation delivery to %s failed (attempt %d, failing since %s): %s"
    args = (agreement_id, failure.attempts, failure.since.isoformat(), text)
    if first:
        log.error(message, *args, exc_info=exc)
    else:
        log.error(message, *args)
    return failure


def apply_due_events(ws: Workspace, when: datetime) -> int:
    """Write the platform events whose time has come into the lake; returns how many."""
    with ws.session() as session:
        if not due_events(session, when):
            return 0
    with ws.lake_lock():  # one writer of the lake's tables (a build's batch, the server's)
        with ws.session() as session:
            due = due_events(session, when)
            users = [e.user_id for e in due if e.user_id is not None and e.post_id is None]
            posts = [e.post_id for e in due if e.post_id is not None]
            # The whole story of each subject, so a late event never overrides a later one.
            story = events_in_effect(session, when, user_ids=users, post_ids=posts)
        if due:
            apply_events(ws.lake, [e for e in story if _touches(e, users, posts)])
            with ws.write_session() as session, session.begin():
                mark_events_applied(session, [e.event_id or "" for e in due], when)
    return len(due)


def _touches(event: PlatformEvent, users: Sequence[int], posts: Sequence[int]) -> bool:
    """Whether the event belongs to the story of a due event's subject: an account's own events, or
    the events of a post (its deletion, its likes …)."""
    if event.post_id is not None:
        return event.post_id in posts
    return event.user_id in users


def require_delivered(ws: Workspace, agreement_id: str, when: datetime) -> None:
    """Refuse to release new data to a partner whose revocations are stuck: the build would withdraw
    the same rows without their forget entries."""
    with ws.session() as session:
        if latest_release(session, agreement_id) is None:
            return
        stuck = undelivered_intents(session, agreement_id, when, 1)
        failure = next((f for f in delivery_failures(session) if f.agreement_id == agreement_id), None)
    if stuck:
        reason = f" (failing since {failure.since.isoformat()}: {failure.error})" if failure else ""
        raise UserError(
            f"agreement {agreement_id}: revocations are waiting to be delivered to it{reason}; "
            "deliver them first (`datalease revoke process`), then build"
        )


class _Policies:
    """The policy of each revision a release was built with (read from the store once per batch,
    parsed once per process: `load_revision`)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._read: dict[int, Policy] = {}

    def revision(self, revision_id: int) -> Policy:
        if revision_id not in self._read:
            with self.ws.session() as session:
                revision = get_policy_revision(session, revision_id)
            if revision is None:
                raise RuntimeError(f"policy revision {revision_id} of a release is missing from the store")
            self._read[revision_id] = load_revision(revision_id, revision.source_text)
        return self._read[revision_id]


def _deliver(
    ws: Workspace, agreement_id: str, intents: Sequence[Intent], snapshot: ConsentSnapshot
) -> tuple[int, int]:
    """One agreement's share of the batch; returns (rows removed, forget entries added)."""
    started = time.perf_counter()
    directory = ws.share_dir(agreement_id)
    with ws.share_lock(agreement_id):
        with ws.session() as session:
            previous = latest_release(session, agreement_id)
            # Another batch (a build's, or a second worker) may have delivered some while we waited.
            done = delivered_agreements(session, [i.intent_id for i in intents])
        intents = [i for i in intents if (i.intent_id, agreement_id) not in done]
        if not intents or previous is None:
            return 0, 0
        # The release's own policy revision and instant: one instant for everyone (see withdraw.py).
        policy = _Policies(ws).revision(previous.policy_revision_id)
        with ws.session() as session:
            agreement = get_agreement(session, agreement_id, policy)
        subjects = {i.intent_id: subject_of(i) for i in intents}
        ids = affected_ids(list(subjects.values()))
        batch = f"intents {intents[0].intent_id}-{intents[-1].intent_id}"
        withdrawn = withdraw(ws, policy, agreement, previous, ids, snapshot, batch)
        delivered_at = utc_now()
        entries = _forget_entries(ws, agreement, intents, subjects, withdrawn, delivered_at)
        tables = [t for t in withdrawn.tables if t.category != forget_table.TABLE]
        forget_pinned = previous.table(forget_table.TABLE)
        path = directory / forget_table.TABLE
        if entries:
            info = delta.commit_info(agreement_id, KIND_REVOCATION, batch=batch)
            version = forget_table.write_forget(path, entries, info)
            tables.append(
                ReleaseTable(forget_table.TABLE, version, forget_table.row_count(path), len(entries), 0, 1, 0)
            )
        elif forget_pinned is not None:
            tables.append(
                replace(forget_pinned, rows_added=0, rows_removed=0, files_added=0, files_removed=0)
            )
        crashpoint("revoke:after_commit")
        removed = sum(t.rows_removed for t in tables)
        with ws.write_session() as session, session.begin():
            release_id = previous.release_id
            if withdrawn.changed or entries:
                release_id = record_release(
                    session,
                    replace(
                        previous,
                        release_id=0,
                        built_at=delivered_at,
                        kind=KIND_REVOCATION,
                        full_build=False,
                        duration_ms=int((time.perf_counter() - started) * 1000),
                        excluded={},
                        tables=tuple(tables),
                    ),
                )
                entries = [replace(e, release_id=release_id) for e in entries]
            add_forget_entries(session, entries)
            counts: dict[int, int] = {}
            for entry in entries:
                counts[entry.intent_id] = counts.get(entry.intent_id, 0) + 1
            for intent in intents:
                record_delivery(
                    session,
                    intent.intent_id,
                    agreement_id,
                    release_id,
                    counts.get(intent.intent_id, 0),
                    delivered_at,
                )
    return removed, len(entries)


def _forget_entries(
    ws: Workspace,
    agreement: Agreement,
    intents: Sequence[Intent],
    subjects: dict[int, Subject],
    withdrawn: Withdrawn,
    delivered_at: datetime,
) -> list[ForgetEntry]:
    """One forget entry per subject (however many intents name it) whose rows this batch withdrew;
    each deleted row counts for one subject only, so the entries' rows add up to the rows deleted."""
    secret = agreement_secret(ws.master_key, agreement.agreement_id)
    sla = timedelta(hours=agreement.deletion_sla_hours)
    claims = claim_rows(secret, intents, subjects, withdrawn.deleted, withdrawn.authored)
    entries: list[ForgetEntry] = []
    for claim in claims:
        if not claim.rows:
            continue
        first = claim.first_intent
        entries.append(
            ForgetEntry(
                forget_id=forget_id(agreement.agreement_id, first.intent_id, claim.scope, claim.subject_key),
                agreement_id=agreement.agreement_id,
                partner=agreement.partner,
                intent_id=first.intent_id,
                release_id=0,
                scope=claim.scope,
                subject_key=claim.subject_key,
                rows=claim.rows,
                reason_code=claim.reason_code,
                requested_at=first.requested_at,
                delivered_at=delivered_at,
                deadline=first.requested_at + sla,  # the SLA runs from the person's request
                acked_at=None,
                certificate=None,
            )
        )
    return entries


class RevocationLoop(BackgroundLoop):
    """Runs batches in a background thread (`run_batches`)."""

    name = "datalease-revocation"

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
        run_batches(self.ws, self._stop, window_s=self.window_s, on_error=self.on_error)


def run_batches(
    ws: Workspace,
    stop: threading.Event,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    on_error: Callable[[Exception], None] | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> None:
    """Batches until `stop` is set: the next at once after a batch that delivered intents (more may
    have come while it ran), else after `window_s`; a batch under way always finishes first (the
    server's loop, `datalease worker`). On PostgreSQL it skips intents another batch has claimed."""
    while not stop.is_set():
        try:
            result = process_pending(ws, respect_backoff=True)
        except Exception as exc:  # keep going; the intents stay pending and are retried
            if on_error is not None:
                on_error(exc)
        else:
            if on_batch is not None:
                on_batch(result)
            if result.intents:
                continue
        stop.wait(window_s)
