"""`order apply|list|show|lift`, `agreement suspend|terminate` and `revoke bulk`: bulk withdrawals
(docs/orders.md, docs/agreements.md). Every command that withdraws shows its impact; `--dry-run`
shows it and records nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import HomeOption, JsonOption, out, print_json, read_text, workspace
from datalease.cli.licensing import agreement_app
from datalease.cli.revocation import revoke_app
from datalease.policy.model import RegulatorOrder
from datalease.revocation.impact import ImpactRow

order_app = typer.Typer(no_args_is_help=True, help="Regulator orders: apply, list, show, lift.")
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would be withdrawn; record nothing.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept with the agreement's history).")]


def register(app: typer.Typer) -> None:
    app.add_typer(order_app, name="order")
    agreement_app.command("suspend")(agreement_suspend)
    agreement_app.command("terminate")(agreement_terminate)
    revoke_app.command("bulk")(revoke_bulk)


def _impact(outcome: object) -> None:
    from datalease.services.orders import Outcome

    assert isinstance(outcome, Outcome)
    print_impact(outcome.impact, dry_run=outcome.dry_run)


def print_impact(impact: Sequence[ImpactRow], *, dry_run: bool) -> None:
    """The impact table: per agreement and partner, each table's people and rows withdrawn."""
    verb = "would withdraw" if dry_run else "withdraws"
    if not any(r.rows for r in impact):
        out.print(f"impact: {verb} nothing from any released share")
        return
    table = Table("agreement", "partner", "table", "people", "rows", title=f"impact: {verb}")
    for row in impact:
        table.add_row(row.agreement_id, row.partner, row.category, str(row.people), str(row.rows))
    out.print(table)
    out.print(f"total: {sum(r.rows for r in impact)} row(s)")


def _describe(order: RegulatorOrder) -> str:
    where = ", ".join((*order.regions, *order.countries))
    until = f" until {order.until.isoformat()}" if order.until else ""
    lifted = f", lifted {order.lifted_at.isoformat()}" if order.lifted_at else ""
    return (
        f"{order.order_id} by {order.issued_by} (reference {order.reference}): {where}; "
        f"categories {', '.join(order.categories)}; purposes {', '.join(order.purposes)}; "
        f"from {order.effective.isoformat()}{until}{lifted}"
    )


@order_app.command("apply")
def order_apply(file: Path, dry_run: DryRun = False, home: HomeOption = None) -> None:
    """Record a regulator's order (YAML, docs/orders.md) and withdraw what it halts from every share."""
    from datalease.services.orders import apply_order

    outcome = apply_order(workspace(home), read_text(file), str(file), dry_run=dry_run)
    assert outcome.order is not None
    _impact(outcome)
    if dry_run:
        out.print(f"dry run: order {outcome.order.order_id} not recorded")
        return
    assert outcome.withdrawal is not None
    out.print(
        f"order {outcome.order.order_id} recorded; bulk withdrawal {outcome.withdrawal.withdrawal_id} "
        "queued (the server's bulk worker delivers it; or `datalease revoke bulk`)"
    )


@order_app.command("list")
def order_list(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Every order with its reach, window and whether it was lifted."""
    from datalease.services.orders import orders

    found = orders(workspace(home))
    if as_json:
        print_json([_order_dict(o) for o in found])
        return
    table = Table("order", "issued by", "reference", "where", "effective", "until", "lifted")
    for o in found:
        table.add_row(
            o.order_id,
            o.issued_by,
            o.reference,
            ", ".join((*o.regions, *o.countries)),
            o.effective.isoformat(),
            o.until.isoformat() if o.until else "",
            o.lifted_at.isoformat() if o.lifted_at else "",
        )
    out.print(table)


def _order_dict(o: RegulatorOrder) -> dict[str, object]:
    return {
        "order": o.order_id,
        "issued_by": o.issued_by,
        "reference": o.reference,
        "regions": list(o.regions),
        "countries": list(o.countries),
        "categories": list(o.categories),
        "purposes": list(o.purposes),
        "effective": o.effective.isoformat(),
        "until": o.until.isoformat() if o.until else None,
        "lifted_at": o.lifted_at.isoformat() if o.lifted_at else None,
        "note": o.note,
    }


@order_app.command("show")
def order_show(order_id: str, as_json: JsonOption = False, home: HomeOption = None) -> None:
    """One order and its bulk withdrawal's progress per agreement."""
    from datalease.services.orders import order

    found, deliveries = order(workspace(home), order_id)
    if as_json:
        body = _order_dict(found)
        body["withdrawals"] = [
            {
                "withdrawal": w.withdrawal_id,
                "completed_at": w.completed_at.isoformat() if w.completed_at else None,
                "agreements": [
                    {"agreement": p.agreement_id, "rows": p.rows_deleted, "chunks": p.chunks}
                    for p in progress
                ],
            }
            for w, progress in deliveries
        ]
        print_json(body)
        return
    out.print(_describe(found), markup=False, highlight=False)
    for w, progress in deliveries:
        state = f"completed {w.completed_at.isoformat()}" if w.completed_at else "in progress"
        out.print(f"bulk withdrawal {w.withdrawal_id}: {state}")
        for p in progress:
            out.print(f"  {p.agreement_id}: {p.rows_deleted} row(s) deleted in {p.chunks} chunk(s)")


@order_app.command("lift")
def order_lift(order_id: str, dry_run: DryRun = False, home: HomeOption = None) -> None:
    """Lift an order: it stops applying now (rows return with the next full build)."""
    from datalease.services.orders import lift

    lifted = lift(workspace(home), order_id, dry_run=dry_run)
    if dry_run:
        out.print(f"dry run: order {order_id} would be lifted now; nothing recorded")
        return
    assert lifted.lifted_at is not None
    out.print(
        f"order {order_id} lifted on {lifted.lifted_at.isoformat()}; "
        "run `datalease release build --full` to release what it halted"
    )


def _end(agreement_id: str, status: str, reason: str, dry_run: bool, home: Path | None) -> None:
    from datalease.services.orders import end_agreement

    outcome = end_agreement(workspace(home), agreement_id, status, reason, dry_run=dry_run)
    if status == "terminated":
        _impact(outcome)
    if dry_run:
        out.print(f"dry run: agreement {agreement_id} would be {status}; nothing recorded")
        return
    out.print(f"agreement {agreement_id} {status}")
    for note in outcome.notes:
        out.print(note)


def agreement_suspend(
    agreement_id: str, reason: Reason, dry_run: DryRun = False, home: HomeOption = None
) -> None:
    """Suspend: no new release from now on; the share stays readable and revocations keep flowing."""
    _end(agreement_id, "suspended", reason, dry_run, home)


def agreement_terminate(
    agreement_id: str, reason: Reason, dry_run: DryRun = False, home: HomeOption = None
) -> None:
    """Terminate: the share is emptied through deletes, a whole-dataset forget entry is sent, and
    the share closes at the deletion deadline."""
    _end(agreement_id, "terminated", reason, dry_run, home)


def revoke_bulk(home: HomeOption = None) -> None:
    """Deliver pending bulk withdrawals now (the server's bulk worker does this continuously)."""
    from datalease.services.orders import deliver_bulk

    result = deliver_bulk(workspace(home))
    out.print(
        f"{result.withdrawals} bulk withdrawal(s) completed: {result.rows_removed} row(s) deleted "
        f"in {result.chunks} chunk(s)"
    )
