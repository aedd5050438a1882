"""The operator's Billing tab (`/operator/billing`: charts, invoices due, funds) and printable invoices
(`/operator/invoices/<number>`, the same page as `datalease invoice show --format html`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from datalease.billing.documents import to_html
from datalease.errors import UserError
from datalease.reporting.business import business_report
from datalease.services.billing import invoice, invoice_status, invoices
from datalease.timeparse import utc_now
from datalease.web.billing_charts import Chart, bar_chart
from datalease.web.routes import PageError, WorkspaceDep, render, viewer
from datalease.web.sessions import Viewer

router = APIRouter(tags=["Pages"])
_HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "The error page: sign in as an operator first", "content": _HTML}
}
_INVOICE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"description": "The error page: no such invoice or credit note", "content": _HTML},
}


def _operator_only(who: Viewer | None) -> None:
    if who is None or not who.operator:
        raise PageError(401, "Operators only", "Sign in with the operator token to see the console.")


def charts(report: Any) -> list[Chart]:
    found = []
    for currency, partners in sorted(report.revenue.items()):
        months = sorted({m for months in partners.values() for m in months})
        found.append(bar_chart(f"Revenue per partner per month ({currency})", months, partners, currency))
    for currency in sorted({f["currency"] for f in report.funds}):
        runs = [f for f in report.funds if f["currency"] == currency]
        periods = [f["period"] for f in runs]
        values: dict[str, dict[str, Decimal | int]] = {
            "fund": {f["period"]: f["fund"] for f in runs},
            "paid": {f["period"]: f["paid"] for f in runs},
        }
        found.append(bar_chart(f"Contributor fund per payout run ({currency})", periods, values, currency))
    for currency, rows in sorted(report.distribution.items()):
        found.append(
            bar_chart(
                f"How many people earned how much ({currency})",
                [label for label, _ in rows],
                {"people": dict(rows)},
                "people",
            )
        )
    return found


@router.get("/operator/billing", response_class=HTMLResponse, responses=_ERRORS)
def operator_billing(
    request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _operator_only(who)
    report = business_report(ws, utc_now())
    return render(
        request,
        ws,
        "operator_billing.html",
        tab="billing",
        report=report,
        charts=charts(report),
        invoices=list(reversed(invoices(ws))),
        statuses=invoice_status(ws),
        now=report.now,
    )


@router.get("/operator/invoices/{number}", response_class=HTMLResponse, responses=_INVOICE_ERRORS)
def operator_invoice(
    number: str, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _operator_only(who)
    try:
        found = invoice(ws, number)
    except UserError as exc:
        raise PageError(404, "No such invoice", str(exc)) from exc
    return HTMLResponse(to_html(found))
