"""What the sharing server served: metering sums per month, partner and agreement."""

from __future__ import annotations

from datalease.sharing.model import UsageTotal
from datalease.sharing.usagelog import fold_all
from datalease.store.sharing import usage_totals
from datalease.workspace import Workspace


def usage(ws: Workspace, *, partner: str | None = None, month: str | None = None) -> list[UsageTotal]:
    """Folds every server's usage log first, so the last second of requests is counted."""
    fold_all(ws)
    with ws.session() as session:
        return usage_totals(session, partner=partner, month=month)
