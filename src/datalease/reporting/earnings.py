"""What a person earned from the contributor fund: per payout run, partner and agreement, the
record-days behind it, the amount and whether it was paid or carried over. From the stored runs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from datalease.billing.model import record_days
from datalease.store.billing import payout_lines_for_user
from datalease.store.licensing import list_agreements
from datalease.workspace import Workspace


@dataclass(frozen=True)
class Earning:
    period: str
    agreement_id: str
    partner: str
    currency: str
    record_days: Decimal
    amount: Decimal
    status: str  # paid | carried over (below the minimum payout)


def user_earnings(ws: Workspace, user_id: int) -> list[Earning]:
    ws.init()
    with ws.session() as session:
        partners = {r.agreement_id: r.partner for r in list_agreements(session)}
        lines = payout_lines_for_user(session, user_id)
    found = []
    for period, line in lines:
        status = "paid" if line.paid > 0 else "carried over (below the minimum payout)"
        for agreement_id, detail in sorted(line.agreements.items()):
            found.append(
                Earning(
                    period,
                    agreement_id,
                    partners.get(agreement_id, ""),
                    line.currency,
                    record_days(int(detail["row_micros"])),
                    Decimal(detail["earned"]),
                    status,
                )
            )
    return found


def earnings_json(earnings: list[Earning]) -> list[dict[str, Any]]:
    return [
        {
            "period": e.period,
            "agreement": e.agreement_id,
            "partner": e.partner,
            "currency": e.currency,
            "record_days": str(e.record_days),
            "amount": str(e.amount),
            "status": e.status,
        }
        for e in earnings
    ]
