"""What a decision needs that does not change per request, cached: the active policy (loaded once per
policy revision, with the regulator orders in force attached, as `Workspace.active_policy`) and the
platform's users indexed by id (read once per `users` table version). They are re-checked about
once a second on a thread behind the answers, so a newly applied policy, an order or an ingest is
seen within about a second and no request waits for a check.
The decisions are `policy.decide.decide()` or the bulk compiler's plan (services/batch_decide.py).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Final

from datalease.errors import UserError
from datalease.policy.load import load_revision
from datalease.policy.model import Policy, RegulatorOrder, UserFacts
from datalease.policy.orders import with_orders
from datalease.store.orders import list_orders
from datalease.store.policy_revisions import latest_policy_revision, latest_policy_revision_id
from datalease.workspace import Workspace

RECHECK_S: Final = 1.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    policy: Policy  # the revision's policy with `orders` attached
    revision: int
    orders: tuple[RegulatorOrder, ...]
    users: dict[int, UserFacts]
    users_version: int | None


class DecisionContext:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked = 0.0
        self._refreshing = False

    def snapshot(self) -> Snapshot:
        """The current snapshot. Only the first call waits for a read; later re-checks run on a
        thread behind the answers (no request waits for one), so a change is seen within about a
        second plus the time of one check."""
        with self._lock:
            current = self._snapshot
            if current is None:
                current = self._snapshot = self._refresh(None)
                self._checked = time.monotonic()
                return current
            if self._refreshing or time.monotonic() - self._checked < RECHECK_S:
                return current
            self._refreshing = True
        threading.Thread(target=self._refresh_behind, args=(current,), daemon=True).start()
        return current

    def _refresh_behind(self, old: Snapshot) -> None:
        fresh = old
        try:
            fresh = self._refresh(old)
        except Exception as exc:  # keep answering from the last snapshot; the next check retries
            log.warning("decision context re-check failed: %s", exc)
        finally:
            with self._lock:
                self._snapshot = fresh
                self._checked = time.monotonic()
                self._refreshing = False

    def _refresh(self, old: Snapshot | None) -> Snapshot:
        ws = self._ws
        with ws.session() as session:
            # the revision's text is read (and parsed) only when a newer revision was applied
            unchanged = old is not None and old.revision == latest_policy_revision_id(session)
            revision = None if unchanged else latest_policy_revision(session)
            orders = tuple(list_orders(session))  # regulator orders apply with every policy (issue 14)
        if old is not None and unchanged:
            rev_id = old.revision
            policy = old.policy if old.orders == orders else with_orders(old.policy, orders)
        elif revision is None:
            raise UserError("no policy has been applied yet: run `datalease policy apply FILE` first")
        else:
            rev_id = revision.id
            policy = with_orders(load_revision(rev_id, revision.source_text), orders)
        version = ws.lake.version("users")
        if old is not None and old.users_version == version and version is not None:
            users = old.users
        else:
            table = ws.lake.read("users").select(["user_id", "country", "birth_date", "account_state"])
            users = {
                r["user_id"]: UserFacts(r["user_id"], r["country"], r["birth_date"], r["account_state"])
                for r in table.to_pylist()
            }
        return Snapshot(policy, rev_id, orders, users, version)


_CONTEXTS: weakref.WeakKeyDictionary[Workspace, DecisionContext] = weakref.WeakKeyDictionary()
_CONTEXTS_LOCK = threading.Lock()


def context_of(ws: Workspace) -> DecisionContext:
    with _CONTEXTS_LOCK:
        found = _CONTEXTS.get(ws)
        if found is None:
            found = _CONTEXTS[ws] = DecisionContext(ws)
        return found
