"""The revocation worker: pending intents → per-agreement deletes, forget entries, a pinned release.

One batch takes every intent in effect, applies pending platform events to the lake, then for each
agreement that has released data: under the share's lock, withdraws the affected rows (the release
plan's own diff, deletes only), records forget entries for the subjects whose rows it withdrew,
and commits a `revocation` release with the deliveries in one transaction. Intents are marked
processed after every agreement has its delivery, so a worker killed at any point and restarted
completes each revocation exactly once: delivered (intent, agreement) pairs are skipped, commits of
a dead batch are adopted, forget ids are deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pyarrow as pa

from datalease.faults import crashpoint
from datalease.licensing.model import Agreement
from datalease.platform.events import apply_events
from datalease.policy.load import load_policy
from datalease.policy.model import Policy
from datalease.releases.build import share_dir
from datalease.releases.keys import agreement_secret, post_key, user_key
from datalease.releases.lock import share_lock
from datalease.releases.revoke import deleted_rows, revoke
from datalease.revocation import forget_table
from datalease.revocation.subjects import SCOPE_POST, SCOPE_USER, Subject, affected_ids, forget_id, subject_of
from datalease.store.licensing import get_agreement, list_agreements
from datalease.store.policy_revisions import latest_policy_revision
from datalease.store.releases import ReleaseTable, latest_release, record_release
from datalease.store.revocation import (
    ForgetEntry,
    Intent,
    add_forget_entries,
    delivered_agreements,
    mark_events_applied,
    mark_processed,
    pending_intents,
    record_delivery,
    unapplied_events,
)
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

DEFAULT_WINDOW_S = 0.5


@dataclass(frozen=True)
class BatchResult:
    intents: int
    agreements: int  # agreements from which this batch withdrew rows
    rows_removed: int
    forget_entries: int
    duration_ms: int


def process_pending(ws: Workspace, *, now: datetime | None = None, limit: int = 10_000) -> BatchResult:
    started = time.perf_counter()
    when = now or utc_now()
    # Every event reaches the lake, those that withdraw nothing too (user_unprotect, …): the next
    # build reads the account as it now is.
    _apply_platform_events(ws, when)
    with ws.session() as session:
        pending = pending_intents(session, when, limit)
    if not pending:
        return BatchResult(0, 0, 0, 0, 0)
    with ws.session() as session:
        revision = latest_policy_revision(session)
        records = [r for r in list_agreements(session) if latest_release(session, r.agreement_id) is not None]
        delivered = delivered_agreements(session, [i.intent_id for i in pending])
    if revision is None:
        raise RuntimeError("revocation intents exist but no policy was ever applied")
    policy = load_policy(revision.source_text, f"policy revision {revision.id}")
    agreements = rows = entries = 0
    for record in records:
        todo = [i for i in pending if (i.intent_id, record.agreement_id) not in delivered]
        if not todo:
            continue
        with ws.session() as session:
            agreement = get_agreement(session, record.agreement_id, policy)
        removed, added = _deliver(ws, policy, agreement, todo, when)
        agreements += removed > 0 or added > 0
        rows += removed
        entries += added
    crashpoint("revoke:before_mark")
    with ws.write_session() as session, session.begin():
        mark_processed(session, [i.intent_id for i in pending], utc_now())
    return BatchResult(len(pending), agreements, rows, entries, int((time.perf_counter() - started) * 1000))


def _apply_platform_events(ws: Workspace, when: datetime) -> None:
    with ws.session() as session:
        if not unapplied_events(session):
            return
    with share_lock(ws.settings.lake_dir):  # one writer of the lake's tables (a build's batch, the server's)
        with ws.session() as session:
            events = unapplied_events(session)
        if events:
            apply_events(ws.lake, events)
            with ws.write_session() as session, session.begin():
                mark_events_applied(session, [e.event_id or "" for e, _ in events], when)


def _deliver(
    ws: Workspace, policy: Policy, agreement: Agreement, intents: Sequence[Intent], when: datetime
) -> tuple[int, int]:
    """One agreement's share of the batch; returns (rows removed, forget entries added)."""
    started = time.perf_counter()
    directory = share_dir(ws, agreement.agreement_id)
    with share_lock(directory):
        with ws.session() as session:
            previous = latest_release(session, agreement.agreement_id)
            # Another batch (a build's, or a second worker) may have delivered some while we waited.
            done = delivered_agreements(session, [i.intent_id for i in intents])
        intents = [i for i in intents if (i.intent_id, agreement.agreement_id) not in done]
        if not intents:
            return 0, 0
        assert previous is not None
        subjects = {i.intent_id: subject_of(i) for i in intents}
        ids = affected_ids(list(subjects.values()))
        batch = f"intents {intents[0].intent_id}-{intents[-1].intent_id}"
        revoked = revoke(
            ws,
            policy,
            agreement,
            previous,
            list(ids.users),
            list(ids.posts),
            {t: list(p) for t, p in ids.engagement.items()},
            when,
            batch,
        )
        delivered_at = utc_now()
        entries = _forget_entries(ws, agreement, intents, subjects, revoked.deleted, delivered_at)
        tables = [t for t in revoked.tables if t.category != forget_table.TABLE]
        forget_pinned = previous.table(forget_table.TABLE)
        path = directory / forget_table.TABLE
        if entries:
            info = {
                "datalease.agreement": agreement.agreement_id,
                "datalease.kind": "revocation",
                "datalease.batch": batch,
            }
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
            if revoked.changed or entries:
                release_id = record_release(
                    session,
                    replace(
                        previous,
                        release_id=0,
                        built_at=delivered_at,
                        kind="revocation",
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
                    agreement.agreement_id,
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
    deleted: dict[str, pa.Table],
    delivered_at: datetime,
) -> list[ForgetEntry]:
    """A forget entry per intent whose subject had rows among those this batch withdrew."""
    secret = agreement_secret(ws.master_key, agreement.agreement_id)
    sla = timedelta(hours=agreement.deletion_sla_hours)
    entries: list[ForgetEntry] = []
    for intent in intents:
        subject = subjects[intent.intent_id]
        if subject.scope == SCOPE_USER and subject.user_id is not None:
            key = user_key(secret, subject.user_id)
            rows = deleted_rows(deleted, {"user_key": key})
        elif subject.scope == SCOPE_POST and subject.post_id is not None:
            key = post_key(secret, subject.post_id)
            rows = deleted_rows(deleted, {"post_key": key})
        elif subject.table is not None and subject.user_id is not None and subject.post_id is not None:
            liker, post = user_key(secret, subject.user_id), post_key(secret, subject.post_id)
            key = f"{liker}:{post}"
            rows = deleted_rows(
                {subject.table: deleted.get(subject.table, pa.table({}))},
                {"user_key": liker, "post_key": post},
            )
        else:
            continue
        if rows:
            entries.append(
                ForgetEntry(
                    forget_id=forget_id(agreement.agreement_id, intent.intent_id, subject.scope, key),
                    agreement_id=agreement.agreement_id,
                    partner=agreement.partner,
                    intent_id=intent.intent_id,
                    release_id=0,
                    scope=subject.scope,
                    subject_key=key,
                    rows=rows,
                    reason_code=subject.reason_code,
                    requested_at=intent.requested_at,
                    delivered_at=delivered_at,
                    deadline=intent.requested_at + sla,  # the SLA runs from the person's request
                    acked_at=None,
                    certificate=None,
                )
            )
    return entries


class RevocationLoop:
    """Runs batches in a background thread: a batch every `window_s` while intents are pending."""

    def __init__(
        self,
        ws: Workspace,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.ws = ws
        self.window_s = window_s
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="datalease-revocation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                process_pending(self.ws)
            except Exception as exc:  # keep serving; the intents stay pending and are retried
                if self.on_error is not None:
                    self.on_error(exc)
            self._stop.wait(self.window_s)
