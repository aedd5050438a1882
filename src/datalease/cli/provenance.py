"""`attestation record|show`, `models`, `summary`: partners' attestations, declared models that are
overdue, and the AI Act training-content summary (issue 18)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import HomeOption, JsonOption, out, print_json, workspace

attestation_app = typer.Typer(no_args_is_help=True, help="Partners' attestations (needed to activate).")


def register(app: typer.Typer) -> None:
    app.add_typer(attestation_app, name="attestation")
    app.command("models")(models_command)
    app.command("summary")(summary_command)


@attestation_app.command("record")
def attestation_record(
    agreement: Annotated[str, typer.Argument(help="The agreement id.")],
    signer: Annotated[str, typer.Option(help="Who signs for the partner (name, role).")],
    contact: Annotated[str, typer.Option(help="Where deletion requests go.")],
    intended_use: Annotated[str, typer.Option("--intended-use", help="What the data will be used for.")],
    home: HomeOption = None,
) -> None:
    """Record the partner's attestation (every prohibited use accepted); valid for the agreement's
    attestation_renewal_days."""
    from datalease.licensing.rights import PROHIBITED_USE_CODES
    from datalease.services.provenance import record_attestation

    found = record_attestation(
        workspace(home),
        agreement,
        signer=signer,
        contact=contact,
        intended_use=intended_use,
        accepted=PROHIBITED_USE_CODES,
    )
    out.print(
        f"attestation {found.attestation_id} for {found.agreement_id} by {found.signer} recorded "
        f"{found.recorded_at:%Y-%m-%d %H:%M} UTC, valid until {found.valid_until:%Y-%m-%d}"
    )


@attestation_app.command("show")
def attestation_show(
    agreement: Annotated[str, typer.Argument(help="The agreement id.")],
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """The agreement's attestation state: missing, valid or lapsed, and the latest one."""
    from datalease.services.provenance import attestation_state

    state = attestation_state(workspace(home), agreement)
    latest = state.latest
    if as_json:
        print_json(
            {
                "agreement": agreement,
                "state": state.state,
                "latest": None
                if latest is None
                else {
                    "signer": latest.signer,
                    "contact": latest.contact,
                    "intended_use": latest.intended_use,
                    "accepted_prohibited_uses": list(latest.accepted_prohibited_uses),
                    "recorded_at": latest.recorded_at.isoformat(),
                    "valid_until": latest.valid_until.isoformat(),
                },
            }
        )
        return
    if latest is None:
        out.print(f"{agreement}: no attestation (activation is refused until one is recorded)")
        return
    out.print(
        f"{agreement}: {state.state}; signed by {latest.signer} ({latest.contact}) on "
        f"{latest.recorded_at:%Y-%m-%d %H:%M} UTC, valid until {latest.valid_until:%Y-%m-%d}"
    )


def models_command(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Partners by overdue models: declared models that have not answered a forget entry past its
    deadline, and the agreements whose next release that blocks."""
    from datalease.services.provenance import partners_by_overdue

    lines = partners_by_overdue(workspace(home))
    if as_json:
        print_json([line.__dict__ for line in lines])
        return
    table = Table("partner", "overdue models", "models", "entries", "next release blocked")
    for line in lines:
        table.add_row(
            line.partner,
            str(len(line.overdue_models)),
            ", ".join(line.overdue_models),
            str(line.entries),
            ", ".join(line.blocked_agreements) or "no",
        )
    out.print(table if lines else "no declared model is overdue")


def summary_command(
    partner: Annotated[str, typer.Argument(help="The partner.")],
    period: Annotated[str, typer.Option(help="2026, 2026-Q2, 2026-05 or 2026-01-01..2026-07-01.")],
    as_json: JsonOption = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file instead.")] = None,
    home: HomeOption = None,
) -> None:
    """The EU AI Act training-content summary (Art. 53(1)(d)) of the data licensed to PARTNER in the
    period: Markdown, or JSON with --json; every number with its release ids."""
    import json

    from datalease.reporting.ai_act_render import summary_json, summary_markdown
    from datalease.services.provenance import ai_act_summary

    summary = ai_act_summary(workspace(home), partner, period)
    text = (
        json.dumps(summary_json(summary), indent=2, ensure_ascii=False) + "\n"
        if as_json
        else summary_markdown(summary)
    )
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
        out.print(f"summary of {partner} for {summary.period.label} written to {out_file}")
    else:
        typer.echo(text, nl=False)
