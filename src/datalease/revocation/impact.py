"""A dry run's impact: what a bulk withdrawal would remove — people and rows per table, per agreement
and partner — computed exactly as the bulk worker computes its doomed rows, writing nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from datalease.licensing.registry import get_agreement
from datalease.policy.model import Policy, RegulatorOrder
from datalease.policy.orders import with_orders
from datalease.revocation.bulk import release_policy
from datalease.revocation.bulk_plan import EVERYTHING, NARROWED, doomed_rows, open_session, people_in
from datalease.store.releases import latest_release
from datalease.workspace import Workspace


@dataclass(frozen=True)
class ImpactRow:
    agreement_id: str
    partner: str
    category: str
    people: int
    rows: int


def impact_of(
    ws: Workspace,
    agreement_ids: list[str],
    at: datetime,
    *,
    everything: bool = False,
    order: RegulatorOrder | None = None,
    countries: list[str] | None = None,
    policy: Policy | None = None,
) -> list[ImpactRow]:
    """What would go from each agreement's share: every row (`everything`), or the rows the release
    plan — with `order` added to the orders in force, or under `policy` (a narrower revision, judged
    at `at`) — no longer allows among `countries`' people (everyone when None)."""
    out: list[ImpactRow] = []
    people = people_in(ws.lake, countries) if countries is not None else None
    for agreement_id in agreement_ids:
        with ws.session() as session:
            previous = latest_release(session, agreement_id)
        if previous is None:
            continue
        rules = release_policy(ws, previous) if policy is None else policy
        if order is not None:
            rules = with_orders(rules, (*rules.orders, order))
        with ws.session() as session:
            agreement = get_agreement(session, agreement_id, rules)
        with open_session(ws, at) as diff:
            doomed = doomed_rows(
                ws,
                diff,
                mode=EVERYTHING if everything else NARROWED,
                policy=rules,
                agreement=agreement,
                previous=previous,
                at=at,
                people=people,
                policy_at=at if policy is not None else None,
            )
            out += [ImpactRow(agreement_id, agreement.partner, d.category, d.people, d.rows) for d in doomed]
    return out


def impact_json(rows: list[ImpactRow]) -> str:
    return json.dumps([r.__dict__ for r in rows])
