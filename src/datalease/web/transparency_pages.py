"""The public transparency report (issue 18): `/transparency?period=P` (a page with SVG charts, no sign
in) and `/transparency.json?period=P` (the Ed25519-signed document); `/transparency/key` gives the
public key. P: 2026, 2026-Q2, 2026-05 or 2026-01-01..2026-07-01 (default: this year)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from datalease.errors import UserError
from datalease.reporting.public_report import bar_chart
from datalease.services.public_report import build_report, public_key_b64
from datalease.timeparse import utc_now
from datalease.web.routes import PageError, WorkspaceDep, render

router = APIRouter(tags=["Public"])
_ANSWERS: dict[int | str, dict[str, Any]] = {400: {"description": "The period is not one the report knows"}}


def _period(period: str | None) -> str:
    return period or f"{utc_now():%Y}"


@router.get("/transparency", response_class=HTMLResponse, responses=_ANSWERS)
def transparency_page(request: Request, ws: WorkspaceDep, period: str | None = None) -> Response:
    try:
        document = build_report(ws, _period(period))
    except UserError as exc:
        raise PageError(400, "Unknown period", str(exc)) from exc
    people = document["people_by_region"]
    acks = document["acknowledgements"]
    charts = {
        "people": bar_chart("People per region", people, ("users", "included", "opted_out")),
        "acks": bar_chart(
            "Acknowledgements of forget entries",
            {"entries": acks},
            ("on_time", "late", "overdue", "pending"),
        ),
    }
    return render(
        request,
        ws,
        "transparency.html",
        doc=document,
        charts=charts,
        signed=json.dumps(document["signature"], indent=2),
    )


@router.get("/transparency.json", responses=_ANSWERS)
def transparency_json(ws: WorkspaceDep, period: str | None = None) -> JSONResponse:
    try:
        return JSONResponse(build_report(ws, _period(period)))
    except UserError as exc:
        return JSONResponse({"errorCode": "INVALID_PARAMETER_VALUE", "message": str(exc)}, status_code=400)


@router.get("/transparency/key")
def transparency_key(ws: WorkspaceDep) -> dict[str, str]:
    """The Ed25519 public key (raw, base64) the reports are signed with."""
    return {"alg": "Ed25519", "public_key": public_key_b64(ws.master_key)}
