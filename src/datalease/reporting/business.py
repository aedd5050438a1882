"""The business at a glance (operators): revenue per partner per month, the fund of each payout run,
how many people earned how much, and the invoices due. Read-only; from the store alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from datalease.billing.model import KIND_INVOICE, Invoice
from datalease.store.billing import credited, list_invoices, list_payout_runs
from datalease.workspace import Workspace

# Payout distribution buckets (upper bounds, exclusive; the last is open).
BUCKETS: Final = (Decimal("1"), Decimal("5"), Decimal("20"), Decimal("100"), Decimal("1000"))


@dataclass(frozen=True)
class BusinessReport:
    revenue: dict[str, dict[str, dict[str, Decimal]]]  # currency → partner → month → net revenue
    funds: list[dict[str, Any]]  # per run and currency: revenue, fund, paid, carried, people
    distribution: dict[str, list[tuple[str, int]]]  # currency → [(bucket label, people)]
    due: list[Invoice]  # issued invoices no credit note cancels, oldest first
    now: datetime


def bucket_label(index: int) -> str:
    if index == 0:
        return f"< {BUCKETS[0]}"
    if index == len(BUCKETS):
        return f">= {BUCKETS[-1]}"
    return f"{BUCKETS[index - 1]}–{BUCKETS[index]}"


def _bucket(amount: Decimal) -> int:
    return next((i for i, bound in enumerate(BUCKETS) if amount < bound), len(BUCKETS))


def business_report(ws: Workspace, now: datetime) -> BusinessReport:
    ws.init()
    with ws.session() as session:
        invoices = list_invoices(session)
        done = credited(session)
        runs = list_payout_runs(session, with_lines=True)
    revenue: dict[str, dict[str, dict[str, Decimal]]] = {}
    for inv in invoices:
        months = revenue.setdefault(inv.currency, {}).setdefault(inv.partner, {})
        months[inv.period] = months.get(inv.period, Decimal("0.00")) + inv.total
    funds: list[dict[str, Any]] = []
    counts: dict[str, list[int]] = {}
    for run in runs:
        for currency in sorted({f.currency for f in run.funds} | {ln.currency for ln in run.lines}):
            lines = [ln for ln in run.lines if ln.currency == currency]
            mine = [f for f in run.funds if f.currency == currency]
            funds.append(
                {
                    "period": run.period,
                    "currency": currency,
                    "revenue": sum((f.revenue for f in mine), Decimal("0.00")),
                    "fund": sum((f.fund for f in mine), Decimal("0.00")),
                    "paid": sum((ln.paid for ln in lines), Decimal("0.00")),
                    "carried_over": sum((ln.carried_out for ln in lines), Decimal("0.00")),
                    "people_earning": sum(1 for ln in lines if ln.earned > 0),
                    "people_paid": sum(1 for ln in lines if ln.paid > 0),
                }
            )
            slots = counts.setdefault(currency, [0] * (len(BUCKETS) + 1))
            for ln in lines:
                if ln.earned > 0:
                    slots[_bucket(ln.earned)] += 1
    distribution = {c: [(bucket_label(i), n) for i, n in enumerate(slots)] for c, slots in counts.items()}
    due = [i for i in invoices if i.kind == KIND_INVOICE and i.number not in done and i.total > 0]
    return BusinessReport(revenue, funds, distribution, due, now)


def report_to_json(report: BusinessReport) -> dict[str, Any]:
    return {
        "revenue": {
            currency: {p: {m: str(v) for m, v in months.items()} for p, months in partners.items()}
            for currency, partners in report.revenue.items()
        },
        "funds": [{k: str(v) if isinstance(v, Decimal) else v for k, v in f.items()} for f in report.funds],
        "payout_distribution": {
            c: [{"earned": label, "people": n} for label, n in rows]
            for c, rows in report.distribution.items()
        },
        "invoices_due": [
            {
                "number": i.number,
                "agreement": i.agreement_id,
                "partner": i.partner,
                "period": i.period,
                "currency": i.currency,
                "total": str(i.total),
                "due_at": i.due_at.isoformat(),
                "overdue": i.due_at < report.now,
            }
            for i in report.due
        ],
    }
