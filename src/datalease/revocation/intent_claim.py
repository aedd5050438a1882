"""A batch's claim on the pending intents, so several workers and a build never deliver one twice.

PostgreSQL: the batch opens a transaction of its own, locks the pending intents in effect with
`SELECT … FOR NO KEY UPDATE [SKIP LOCKED]` (`store.revocation.claim_pending`), delivers them to each
agreement (each delivery commits with its release, in other transactions), and marks the fully
delivered ones processed in the claiming transaction, which then commits and lets the claim go. A
background worker skips intents another batch holds; a build's batch and `revoke process` wait for
them, so they return with everything delivered. A batch that dies (kill -9, a lost connection) has
its transaction rolled back by the server: the claim is released and the next batch takes the
intents over, skipping the (intent, agreement) pairs already delivered.

SQLite: no claim (`ids` is None); batches are serialised by the share flock and re-check the
delivered pairs under it, as one machine allows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from datalease.store.revocation import claim_pending, mark_fully_delivered
from datalease.workspace import Workspace


class Claim:
    """The intents one batch holds (`ids`, None on SQLite: every pending intent is in reach)."""

    def __init__(self, ws: Workspace, session: Session | None, ids: list[int] | None) -> None:
        self.ws = ws
        self._session = session
        self.ids = ids

    def mark_delivered(self, agreement_ids: Sequence[str], now: datetime) -> int:
        """Mark processed the claimed intents every agreement has had delivered; returns how many."""
        if self._session is None:
            with self.ws.write_session() as session, session.begin():
                return mark_fully_delivered(session, agreement_ids, now)
        if not self.ids:
            return 0
        return mark_fully_delivered(self._session, agreement_ids, now, only=self.ids)


@contextlib.contextmanager
def claimed_intents(ws: Workspace, now: datetime, limit: int, *, skip_locked: bool) -> Iterator[Claim]:
    """Claim the pending intents for the block; committed (marks included) when it ends normally,
    rolled back — the claim released, nothing marked — when it raises."""
    if ws.engine.dialect.name != "postgresql":
        yield Claim(ws, None, None)
        return
    with ws.session() as session, session.begin():
        yield Claim(ws, session, claim_pending(session, now, limit, skip_locked=skip_locked))
