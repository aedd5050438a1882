"""Partners, agreements and partners' credentials."""

from __future__ import annotations

from pathlib import Path

from datalease.errors import UserError
from datalease.licensing.model import Agreement, AgreementRecord, Partner
from datalease.licensing.registry import create_agreement, get_agreement
from datalease.licensing.tokens import PartnerToken
from datalease.sharing.profiles import IssuedProfile, issue_profile
from datalease.store.licensing import add_partner, list_agreements, list_partners
from datalease.store.sharing import UnknownTokenError, list_tokens, revoke_token
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def register_partner(ws: Workspace, name: str, display_name: str | None, contact: str | None) -> Partner:
    ws.init()
    with ws.write_session() as session, session.begin():
        return add_partner(session, name, display_name, contact)


def partners(ws: Workspace) -> list[Partner]:
    with ws.session() as session:
        return list_partners(session)


def register_agreement(ws: Workspace, text: str, source: str) -> tuple[AgreementRecord, bool]:
    """`agreement create FILE`: validate against the policy and the store, then save (or find the same)."""
    ws.init()
    policy = ws.require_policy()
    with ws.write_session() as session, session.begin():
        return create_agreement(session, text, source, policy=policy)


def agreements(ws: Workspace, partner: str | None = None) -> list[AgreementRecord]:
    with ws.session() as session:
        return list_agreements(session, partner=partner)


def parsed_agreements(ws: Workspace) -> list[Agreement]:
    """Every agreement, read with the active policy."""
    policy = ws.require_policy()
    with ws.session() as session:
        return [get_agreement(session, r.agreement_id, policy) for r in list_agreements(session)]


def agreement(ws: Workspace, agreement_id: str) -> Agreement:
    with ws.session() as session:
        return get_agreement(session, agreement_id, ws.require_policy())


def issue_token(
    ws: Workspace, partner: str, out: Path, *, expires: str | None, endpoint: str | None
) -> IssuedProfile:
    """`partner token`: a bearer token (stored hashed) and the profile file the official client reads."""
    return issue_profile(ws, partner, out, expires=expires, endpoint_base=endpoint)


def tokens(ws: Workspace, partner: str | None = None) -> list[PartnerToken]:
    with ws.session() as session:
        return list_tokens(session, partner)


def withdraw_token(ws: Workspace, token_id: str) -> PartnerToken:
    """`partner token-revoke`: its requests and the file URLs issued to it stop working."""
    try:
        with ws.write_session() as session, session.begin():
            return revoke_token(session, token_id, utc_now())
    except UnknownTokenError as exc:
        raise UserError(str(exc)) from exc
