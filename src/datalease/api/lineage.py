"""`/api/v1/partner/…` for provenance (issue 18), with the partner's Delta Sharing bearer token:
its attestation, its model lineage (which model versions were trained on which releases) and, per
forget entry, what happened to each model. Refusals name the field; nothing is recorded then."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from datalease.errors import UserError
from datalease.server.authfirst import authenticated_first
from datalease.services import provenance
from datalease.sharing import errors
from datalease.sharing.dependencies import Authorized, Service
from datalease.sharing.dependencies import authenticate as authenticate_partner

MAX_ITEMS = 10_000

router = APIRouter(
    prefix="/api/v1", route_class=authenticated_first(authenticate_partner), tags=["Partner API"]
)


class AttestationBody(BaseModel):
    model_config = ConfigDict(strict=True)
    agreement: str = Field(max_length=63)
    signer: str = Field(max_length=200)
    contact: str = Field(max_length=320, description="Where the platform sends deletion requests")
    intended_use: str = Field(max_length=4000)
    accepted_prohibited_uses: list[str] = Field(max_length=20)


@router.post("/partner/attestation", status_code=201, responses=errors.documented(400, 401, 413))
def post_attestation(body: AttestationBody, who: Authorized, svc: Service) -> dict[str, Any]:
    """Attest to an agreement of yours; valid for the agreement's `attestation_renewal_days`."""
    try:
        found = provenance.record_attestation(
            svc.ws,
            body.agreement,
            signer=body.signer,
            contact=body.contact,
            intended_use=body.intended_use,
            accepted=body.accepted_prohibited_uses,
            partner=who.partner,
        )
    except UserError as exc:
        raise errors.invalid(str(exc)) from exc
    return {
        "attestation_id": found.attestation_id,
        "agreement": found.agreement_id,
        "signer": found.signer,
        "recorded_at": found.recorded_at.isoformat(),
        "valid_until": found.valid_until.isoformat(),
    }


class Declaration(BaseModel):
    """A model version and the release it was trained on: `release_id`, or the table version a
    partner synced (`share`, `table`, `table_version`), which names the release that pinned it."""

    model_config = ConfigDict(strict=True)
    model_id: str = Field(min_length=1, max_length=120)
    release_id: int | None = Field(default=None, ge=1)
    share: str | None = Field(default=None, max_length=63)
    table: str | None = Field(default=None, max_length=63)
    table_version: int | None = Field(default=None, ge=0)


class LineageBody(BaseModel):
    model_config = ConfigDict(strict=True)
    declarations: list[Declaration] = Field(min_length=1, max_length=MAX_ITEMS)


@router.post("/partner/lineage", responses=errors.documented(400, 401, 413))
def post_lineage(body: LineageBody, who: Authorized, svc: Service) -> dict[str, Any]:
    """Declare which model versions were trained on which releases (all or none)."""
    try:
        pairs = []
        for index, d in enumerate(body.declarations):
            if d.release_id is not None:
                pairs.append((d.model_id, d.release_id))
            elif d.share and d.table and d.table_version is not None:
                release = provenance.release_of_table_version(
                    svc.ws, who.partner, d.share, d.table, d.table_version
                )
                pairs.append((d.model_id, release))
            else:
                raise UserError(
                    f"declarations[{index}]: expected release_id, or share, table and table_version"
                )
        added = provenance.declare_lineage(svc.ws, who.partner, pairs)
    except UserError as exc:
        raise errors.invalid(str(exc)) from exc
    return {"declared": added, "already_declared": len(body.declarations) - added}


@router.get("/partner/lineage", responses=errors.documented(400, 401))
def get_lineage(who: Authorized, svc: Service) -> dict[str, Any]:
    """Your declarations."""
    return {
        "items": [
            {
                "model_id": m.model_id,
                "share": m.agreement_id,
                "release_id": m.release_id,
                "declared_at": m.declared_at.isoformat(),
            }
            for m in provenance.partner_lineage(svc.ws, who.partner)
        ]
    }


class ModelOutcome(BaseModel):
    model_config = ConfigDict(strict=True)
    model_id: str = Field(min_length=1, max_length=120)
    outcome: str = Field(description="retrained | certificate")
    certificate: str | None = Field(default=None, max_length=100_000)


class ModelAckBody(BaseModel):
    model_config = ConfigDict(strict=True)
    ids: list[str] = Field(min_length=1, max_length=MAX_ITEMS)
    models: list[ModelOutcome] = Field(min_length=1, max_length=1_000)


@router.post("/partner/forget/ack-models", responses=errors.documented(400, 401, 413))
def post_ack_models(body: ModelAckBody, who: Authorized, svc: Service) -> dict[str, Any]:
    """Per forget entry, each declared model retrained without the data or covered by a certificate;
    an entry is acknowledged once every model due for it has answered."""
    try:
        result = provenance.acknowledge_models(
            svc.ws, who.partner, body.ids, [(m.model_id, m.outcome, m.certificate) for m in body.models]
        )
    except UserError as exc:
        raise errors.invalid(str(exc)) from exc
    return {
        "models_recorded": result.models_recorded,
        "acknowledged": result.acknowledged,
        "still_due": result.still_due,
    }
