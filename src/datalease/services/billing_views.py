"""JSON views of payout runs shared by the CLI, the pages and the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from datalease.billing.model import Fund, PayoutLine, record_days
from datalease.services.payouts import PayoutBuild


def fund_json(fund: Fund) -> dict[str, Any]:
    return {
        "agreement": fund.agreement_id,
        "currency": fund.currency,
        "revenue": str(fund.revenue),
        "share": str(fund.share),
        "fund": str(fund.fund),
        "platform_share": str(fund.revenue - fund.fund),
        "people": fund.people,
        "record_days": str(record_days(fund.row_micros)),
    }


def line_json(line: PayoutLine) -> dict[str, Any]:
    return {
        "user_id": line.user_id,
        "currency": line.currency,
        "earned": str(line.earned),
        "carried_in": str(line.carried_in),
        "paid": str(line.paid),
        "carried_out": str(line.carried_out),
        "record_days": str(record_days(line.row_micros)),
        "agreements": {
            a: {"record_days": str(record_days(d["row_micros"])), "earned": d["earned"]}
            for a, d in sorted(line.agreements.items())
        },
    }


def payout_build_json(built: PayoutBuild) -> dict[str, Any]:
    run = built.run
    totals = []
    for currency in sorted({ln.currency for ln in run.lines} | {f.currency for f in run.funds}):
        lines = [ln for ln in run.lines if ln.currency == currency]
        totals.append(
            {
                "currency": currency,
                "paid": str(sum((ln.paid for ln in lines), Decimal("0.00"))),
                "carried_over": str(sum((ln.carried_out for ln in lines), Decimal("0.00"))),
                "people_paid": sum(1 for ln in lines if ln.paid > 0),
                "people_carried": sum(1 for ln in lines if ln.carried_out > 0),
            }
        )
    return {
        "period": run.period,
        "dry_run": built.dry_run,
        "minimum": str(run.minimum),
        "funds": [fund_json(f) for f in run.funds],
        "totals": totals,
        "lines": [line_json(ln) for ln in run.lines],
        "missing_invoices": list(built.missing),
    }
