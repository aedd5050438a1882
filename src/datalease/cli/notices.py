"""`notice delivered` and the consent ledger's proofs: `consent receipt | receipt-key | verify-receipt | head`
(issue 15). `consent verify --anchor` lives with `consent verify` in cli/consent.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import (
    AtOption,
    HomeOption,
    JsonOption,
    maybe_instant,
    out,
    print_json,
    settings,
    workspace,
)
from datalease.cli.consent import consent_app
from datalease.errors import UserError

notice_app = typer.Typer(no_args_is_help=True, help="Policy notices: report who was notified, when, how.")


def register(app: typer.Typer) -> None:
    app.add_typer(notice_app, name="notice")


@notice_app.command("delivered")
def notice_delivered(
    user: str,
    version: str,
    channel: Annotated[str, typer.Option(help="How the notice reached the person: email, in_app, push …")],
    at: AtOption = None,
    home: HomeOption = None,
) -> None:
    """Record that USER was shown the notice of policy VERSION (the notice outbox)."""
    from datalease.services.notices import record_delivery

    done = record_delivery(workspace(home), user, version, channel, maybe_instant(at))
    out.print(
        f"notice {done.version_id} delivered to user {done.user_id} by {done.channel} at "
        f"{done.delivered_at.isoformat()} (first delivery {done.first_delivered_at.isoformat()})"
    )


@consent_app.command("receipt")
def consent_receipt(
    user: str,
    seq: int,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the receipt here.")] = None,
    home: HomeOption = None,
) -> None:
    """The signed consent receipt (ISO/IEC TS 27560 fields, Ed25519) of USER's event #SEQ."""
    from datalease.services.receipts import receipt

    ws = workspace(home)
    data = receipt(ws, ws.user_facts(user).user_id, seq)
    if out_file is None:
        typer.echo(data.decode("ascii"), nl=False)
        return
    out_file.write_bytes(data)
    out.print(f"receipt of event #{seq} written to {out_file}")


@consent_app.command("receipt-key")
def consent_receipt_key(home: HomeOption = None) -> None:
    """The public key (PEM) that verifies this platform's receipts: publish it."""
    from datalease.services.receipts import public_key

    typer.echo(public_key(workspace(home)).decode("ascii"), nl=False)


@consent_app.command("verify-receipt")
def consent_verify_receipt(
    file: Path,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The platform's published key (PEM).")
    ] = None,
    offline: Annotated[bool, typer.Option(help="Only the signature: no home, no ledger.")] = False,
    home: HomeOption = None,
) -> None:
    """Check a receipt: byte-exact canonical form and signature; with a home, also the ledger's event."""
    from datalease.services.receipts import verify_receipt

    try:
        data = file.read_bytes()
        key = public_key.read_bytes() if public_key is not None else None
    except OSError as exc:
        raise UserError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    ws = None if offline else workspace(home)
    if ws is not None and not settings(home).resolved_home.exists():
        raise UserError(
            "no DATALEASE_HOME here: use --offline --public-key KEY.pem to check the signature only"
        )
    checked = verify_receipt(data, public_key_pem_bytes=key, ws=ws)
    body = checked.receipt.body
    where = " and matches the ledger's event" if checked.against_ledger else " (offline: signature only)"
    out.print(
        f"receipt valid: event #{checked.receipt.seq} of {body['subject']['id']}, "
        f"{body['setting']['key']}={str(body['setting']['value']).lower()} ({body['state']}), "
        f"signed by key {checked.receipt.key_id}{where}"
    )


@consent_app.command("head")
def consent_head(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the head file here.")] = None,
    home: HomeOption = None,
) -> None:
    """The chain head (seq, hash) as a head file: keep copies to catch a truncated or rewritten tail."""
    from datalease.services.anchors import ledger_head

    text = json.dumps(ledger_head(workspace(home)), sort_keys=True) + "\n"
    if out_file is None:
        typer.echo(text, nl=False)
        return
    out_file.write_text(text, encoding="utf-8")
    out.print(f"chain head written to {out_file}")


@consent_app.command("by-notice")
def consent_by_notice(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Every recorded choice counted by the notice people had been shown (the latest published then)."""
    from datalease.services.notices import choices_by_notice

    counts = choices_by_notice(workspace(home))
    if as_json:
        print_json([c.__dict__ for c in counts])
        return
    table = Table("notice", "sha256", "choices", "people", "given", "withdrawn", title="choices by notice")
    for c in counts:
        table.add_row(
            c.notice or "before any notice",
            (c.sha256 or "")[:12],
            str(c.choices),
            str(c.people),
            str(c.given),
            str(c.withdrawn),
        )
    out.print(table if counts else "no choices recorded")
