"""`invoice build|list|show|credit`, `payouts build|list|export`, `billing report`: the business."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
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
    plain,
    print_json,
    workspace,
)
from datalease.errors import UserError

invoice_app = typer.Typer(
    no_args_is_help=True, help="Invoices from pricing, the release ledger and metering."
)
payouts_app = typer.Typer(no_args_is_help=True, help="The contributor fund: payout runs by record-days.")
billing_app = typer.Typer(no_args_is_help=True, help="The business at a glance.")

PeriodOption = Annotated[str, typer.Option("--period", help="An ended month, YYYY-MM (UTC).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Compute and show; write nothing.")]


def register(app: typer.Typer) -> None:
    app.add_typer(invoice_app, name="invoice")
    app.add_typer(payouts_app, name="payouts")
    app.add_typer(billing_app, name="billing")


@invoice_app.command("build")
def invoice_build(
    period: PeriodOption,
    agreement: Annotated[
        str | None, typer.Option("--agreement", help="One agreement (default: every one).")
    ] = None,
    dry_run: DryRunOption = False,
    at: AtOption = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Issue one invoice per agreement for an ended month (numbered, hashed, immutable)."""
    from datalease.billing.documents import draft_to_json, to_json
    from datalease.services.billing import build_invoices

    run = build_invoices(
        workspace(home), period, agreement_id=agreement, dry_run=dry_run, now=maybe_instant(at)
    )
    if as_json:
        docs = [draft_to_json(d) for d in run.drafts] if dry_run else [to_json(i) for i in run.issued]
        print_json({"period": run.period.label, "dry_run": dry_run, "invoices": docs,
                    "skipped": [{"agreement": a, "reason": r} for a, r in run.skipped]})  # fmt: skip
        return
    for i, draft in enumerate(run.drafts):
        number = "(dry run)" if dry_run else run.issued[i].number
        plain(f"{number} {draft.agreement_id} {run.period}: {draft.total} {draft.currency}")
        for line in draft.lines:
            plain(f"  {line.description}: {line.quantity} → {line.amount}")
    for agreement_id, reason in run.skipped:
        plain(f"skipped {agreement_id}: {reason}")
    if not run.drafts:
        plain(f"no invoice for {run.period}")


@invoice_app.command("list")
def invoice_list(
    agreement: Annotated[str | None, typer.Option("--agreement", help="One agreement.")] = None,
    period: Annotated[str | None, typer.Option("--period", help="One month, YYYY-MM.")] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Issued invoices and credit notes, oldest first, with their status."""
    from datalease.billing.documents import to_json
    from datalease.billing.period import parse_period
    from datalease.services.billing import invoice_status, invoices

    ws = workspace(home)
    found = invoices(ws, agreement_id=agreement, period=parse_period(period).label if period else None)
    status = invoice_status(ws)
    if as_json:
        print_json([{**to_json(i), "status": status[i.number]} for i in found])
        return
    table = Table("number", "kind", "agreement", "period", "total", "issued", "due", "status")
    for i in found:
        table.add_row(i.number, i.kind, i.agreement_id, i.period, f"{i.total} {i.currency}",
                      i.issued_at.date().isoformat(), i.due_at.date().isoformat(), status[i.number])  # fmt: skip
    out.print(table)


@invoice_app.command("show")
def invoice_show(
    number: str,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or html (printable).")] = "json",
    output: Annotated[Path | None, typer.Option("--output", help="Write to this file.")] = None,
    home: HomeOption = None,
) -> None:
    """One invoice or credit note as JSON, CSV or printable HTML."""
    from datalease.billing.documents import to_csv, to_html, to_json
    from datalease.services.billing import invoice

    doc = invoice(workspace(home), number)
    renderers = {"json": lambda: json.dumps(to_json(doc), indent=2, ensure_ascii=False) + "\n",
                 "csv": lambda: to_csv(doc), "html": lambda: to_html(doc)}  # fmt: skip
    if fmt not in renderers:
        raise UserError(f"--format {fmt!r}: expected json, csv or html")
    text = renderers[fmt]()
    if output is not None:
        output.write_text(text, encoding="utf-8")
        plain(f"{doc.number} written to {output}")
    else:
        plain(text.rstrip("\n"))


@invoice_app.command("credit")
def invoice_credit(
    number: str, dry_run: DryRunOption = False, at: AtOption = None, home: HomeOption = None
) -> None:
    """Issue a credit note that reverses an invoice and refers to it (an invoice is never changed)."""
    from datalease.billing.model import Invoice
    from datalease.services.billing import credit_invoice

    note = credit_invoice(workspace(home), number, dry_run=dry_run, now=maybe_instant(at))
    label = note.number if isinstance(note, Invoice) else "(dry run)"
    plain(f"{label} credit note for {note.refers_to}: {note.total} {note.currency}")


def _money(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise UserError(f"--minimum {text!r}: expected an amount such as 5.00") from exc


@payouts_app.command("build")
def payouts_build(
    period: PeriodOption,
    minimum: Annotated[str, typer.Option("--minimum", help="Minimum payout; less is carried over.")] = "5.00",
    dry_run: DryRunOption = False,
    at: AtOption = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Divide each agreement's fund among the people whose rows its partner held, by record-days."""
    from datalease.services.billing_views import payout_build_json
    from datalease.services.payouts import build_payouts

    built = build_payouts(
        workspace(home), period, minimum=_money(minimum), dry_run=dry_run, now=maybe_instant(at)
    )
    summary = payout_build_json(built)
    if as_json:
        print_json(summary)
        return
    for fund in summary["funds"]:
        plain(f"{fund['agreement']}: revenue {fund['revenue']} {fund['currency']}, fund {fund['fund']} "
              f"({fund['share']}%), {fund['people']} people, {fund['record_days']} record-days")  # fmt: skip
    for total in summary["totals"]:
        plain(f"{total['currency']}: {total['people_paid']} paid {total['paid']}, "
              f"{total['people_carried']} carried over {total['carried_over']}")  # fmt: skip
    for agreement_id in built.missing:
        plain(
            f"no invoice for {agreement_id} in {period}: it contributes nothing (run `datalease invoice build`)"
        )
    plain(f"payout run {period}{' (dry run, nothing written)' if dry_run else ' written'}")


@payouts_app.command("list")
def payouts_list(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Payout runs, oldest first, with their funds."""
    from datalease.services.billing_views import fund_json
    from datalease.services.payouts import payout_runs

    runs = payout_runs(workspace(home))
    if as_json:
        print_json([{"period": r.period, "minimum": str(r.minimum), "funds": [fund_json(f) for f in r.funds]}
                    for r in runs])  # fmt: skip
        return
    table = Table("period", "agreement", "revenue", "share", "fund", "people")
    for r in runs:
        for f in r.funds:
            table.add_row(
                r.period,
                f.agreement_id,
                f"{f.revenue} {f.currency}",
                f"{f.share}%",
                str(f.fund),
                str(f.people),
            )
    out.print(table)


@payouts_app.command("export")
def payouts_export(
    period: PeriodOption,
    output: Annotated[Path | None, typer.Option("--output", help="Write the CSV to this file.")] = None,
    home: HomeOption = None,
) -> None:
    """The run's payments as CSV for a payments provider (one row per person and currency paid)."""
    from datalease.services.payouts import export_csv, payout_run

    text = export_csv(payout_run(workspace(home), period))
    if output is not None:
        output.write_text(text, encoding="utf-8")
        plain(f"written to {output}")
    else:
        plain(text.rstrip("\n"))


@billing_app.command("report")
def billing_report(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Revenue per partner per month, fund totals, payout distribution, invoices due."""
    from datalease.reporting.business import business_report, report_to_json
    from datalease.timeparse import utc_now

    report = report_to_json(business_report(workspace(home), utc_now()))
    if as_json:
        print_json(report)
        return
    for currency, partners in report["revenue"].items():
        for partner, months in partners.items():
            plain(
                f"revenue {partner}: " + ", ".join(f"{m} {v} {currency}" for m, v in sorted(months.items()))
            )
    for fund in report["funds"]:
        plain(f"fund {fund['period']}: {fund['fund']} {fund['currency']} of {fund['revenue']}; "
              f"paid {fund['paid']} to {fund['people_paid']}, carried {fund['carried_over']}")  # fmt: skip
    for currency, rows in report["payout_distribution"].items():
        plain(f"earned ({currency}): " + ", ".join(f"{r['earned']}: {r['people']}" for r in rows))
    for due in report["invoices_due"]:
        plain(f"due {due['number']} {due['partner']} {due['total']} {due['currency']} by {due['due_at'][:10]}"
              + (" (overdue)" if due["overdue"] else ""))  # fmt: skip
