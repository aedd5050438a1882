"""`GET /health`: 200 while revocations are delivered, 503 while any agreement's deliveries fail.

For load balancers and monitoring: the body says which agreement fails, since when, how often and
with which error, and how many intents wait (recorded, not yet delivered everywhere).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from datalease.services.revocation import delivery_health
from datalease.workspace import Workspace

router = APIRouter()


@router.get(
    "/health",
    responses={
        200: {"description": "Serving, and every agreement receives its revocations."},
        503: {"description": "Revocation deliveries to at least one agreement keep failing."},
    },
)
def health(request: Request) -> JSONResponse:
    ws: Workspace = request.app.state.workspace
    failures, waiting = delivery_health(ws)
    body: dict[str, Any] = {
        "status": "degraded" if failures else "ok",
        "revocations": {
            "waiting": waiting,
            "failing": [
                {
                    "agreement": f.agreement_id,
                    "since": f.since.isoformat(),
                    "last_attempt": f.last_at.isoformat(),
                    "attempts": f.attempts,
                    "error": f.error,
                }
                for f in failures
            ],
        },
    }
    return JSONResponse(body, status_code=503 if failures else 200)
