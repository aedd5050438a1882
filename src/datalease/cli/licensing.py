"""`partner …`, `agreement …` and `api-token rotate|create|list|revoke`: who licenses what, and their
credentials (scoped platform API tokens: only their sha256 is stored, the token is shown once)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import HomeOption, JsonOption, out, plain, print_json, read_text, workspace
from datalease.licensing.model import agreement_to_dict, describe_term
from datalease.timeparse import utc_now

partner_app = typer.Typer(no_args_is_help=True, help="Partners who license data.")
agreement_app = typer.Typer(no_args_is_help=True, help="Licensing agreements: scope, fields, pricing, SLA.")
api_token_app = typer.Typer(
    no_args_is_help=True, help="The platform API token (operators, platform services)."
)


def register(app: typer.Typer) -> None:
    app.add_typer(partner_app, name="partner")
    app.add_typer(agreement_app, name="agreement")
    app.add_typer(api_token_app, name="api-token")


@partner_app.command("add")
def partner_add(
    name: str,
    display_name: Annotated[str | None, typer.Option(help="Name shown to people.")] = None,
    contact: Annotated[str | None, typer.Option(help="Contact address for deletion notices.")] = None,
    home: HomeOption = None,
) -> None:
    """Register a partner (a lowercase slug such as lumen-labs)."""
    from datalease.services.licensing import register_partner

    partner = register_partner(workspace(home), name, display_name, contact)
    out.print(f"partner {partner.name} added")


@partner_app.command("list")
def partner_list(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Every partner."""
    from datalease.services.licensing import partners

    found = partners(workspace(home))
    if as_json:
        print_json([asdict(p) for p in found])
        return
    table = Table("name", "display name", "contact", "since")
    for p in found:
        table.add_row(p.name, p.display_name, p.contact or "", f"{p.created_at:%Y-%m-%d}")
    out.print(table)


@partner_app.command("token")
def partner_token(
    partner: str,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the profile (JSON, mode 0600).")],
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime (90d, 12h, 30m) or an ISO-8601 instant; default 90d."),
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Server base URL written into the profile.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Issue PARTNER a bearer token and write the profile file the official delta-sharing client reads."""
    from datalease.services.licensing import issue_token

    issued = issue_token(workspace(home), partner, out_file, expires=expires, endpoint=endpoint)
    out.print(
        f"token {issued.token.token_id} for {partner}, expires {issued.token.expires_at:%Y-%m-%d %H:%M}Z; "
        f"profile written to {issued.path} (endpoint {issued.endpoint})"
    )


@partner_app.command("tokens")
def partner_tokens(
    partner: Annotated[str | None, typer.Argument()] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """A partner's tokens (never their secrets): created, expires, state."""
    from datalease.services.licensing import tokens

    now = utc_now()
    found = tokens(workspace(home), partner)
    if as_json:
        print_json([{**asdict(t), "state": t.state(now)} for t in found])
        return
    table = Table("token", "partner", "created", "expires", "state")
    for t in found:
        table.add_row(
            t.token_id,
            t.partner,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.expires_at:%Y-%m-%d %H:%M}",
            t.state(now),
        )
    out.print(table)


@partner_app.command("token-revoke")
def partner_token_revoke(token_id: str, home: HomeOption = None) -> None:
    """Revoke a token: its requests and the file URLs issued to it stop working."""
    from datalease.services.licensing import withdraw_token

    token = withdraw_token(workspace(home), token_id)
    out.print(f"token {token.token_id} of {token.partner} revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S}Z")


@agreement_app.command("create")
def agreement_create(file: Path, home: HomeOption = None) -> None:
    """Validate an agreement file against the policy and the store, then save it."""
    from datalease.services.licensing import register_agreement

    record, created = register_agreement(workspace(home), read_text(file), str(file))
    verb = "created" if created else "already stored, unchanged:"
    out.print(f"agreement {verb} {record.agreement_id} for {record.partner} ({record.status})")


@agreement_app.command("list")
def agreement_list(
    partner: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Agreements with their partner, status and term."""
    from datalease.services.licensing import agreements

    records = agreements(workspace(home), partner)
    if as_json:
        print_json([{k: v for k, v in asdict(r).items() if k != "source_text"} for r in records])
        return
    table = Table("agreement", "partner", "status", "term")
    for r in records:
        table.add_row(r.agreement_id, r.partner, r.status, describe_term(r.term_start, r.term_end))
    out.print(table)


@agreement_app.command("show")
def agreement_show(agreement_id: str, as_json: JsonOption = False, home: HomeOption = None) -> None:
    """One agreement, as the platform reads it."""
    from datalease.services.licensing import agreement

    view = agreement_to_dict(agreement(workspace(home), agreement_id))
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        out.print(f"[bold]{key}[/]: {value}", highlight=False)


@api_token_app.command("rotate")
def api_token_rotate(home: HomeOption = None) -> None:
    """Write a new platform API token to <home>/keys/api.token: the old one stops working at once, and
    so does every operator session signed in with it."""
    from datalease.services.api_token import rotate_api_token

    plain(f"new platform API token in {rotate_api_token(workspace(home))}")


@api_token_app.command("create")
def api_token_create(
    name: str,
    scope: Annotated[
        list[str], typer.Option("--scope", help="platform:read, platform:write or operator (repeatable).")
    ],
    home: HomeOption = None,
) -> None:
    """Create a scoped API token and print it once (only its sha256 is kept)."""
    from datalease.services.scoped_tokens import create_token

    made = create_token(workspace(home), name, tuple(scope))
    plain(made.token)
    typer.echo(f"token {made.record.token_id} ({', '.join(made.record.scopes)}): shown once", err=True)


@api_token_app.command("list")
def api_token_list(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Every scoped API token: id, name, scopes, created, revoked."""
    from datalease.services.scoped_tokens import tokens

    found = tokens(workspace(home))
    rows = [
        {
            "id": t.token_id,
            "name": t.name,
            "scopes": list(t.scopes),
            "created_at": t.created_at.isoformat(),
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in found
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "scopes", "created", "revoked")
    for t in found:
        revoked = t.revoked_at.isoformat() if t.revoked_at else ""
        table.add_row(t.token_id, t.name, " ".join(t.scopes), t.created_at.isoformat(), revoked)
    out.print(table)


@api_token_app.command("revoke")
def api_token_revoke(token_id: Annotated[str, typer.Argument(metavar="ID")], home: HomeOption = None) -> None:
    """Revoke a scoped token at once (every server: tokens live in the store)."""
    from datalease.services.scoped_tokens import revoke_token

    found = revoke_token(workspace(home), token_id)
    plain(f"token {found.token_id} revoked")
