"""`event`, `revoke process`, `compliance`, `report user`: withdrawals, and where a person's data went."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from datalease.cli.common import AtOption, HomeOption, JsonOption, err, instant, out, print_json, workspace
from datalease.platform.schemas import MAX_ID

revoke_app = typer.Typer(no_args_is_help=True, help="Revocations: withdraw rows from partners, forget lists.")
report_app = typer.Typer(no_args_is_help=True, help="Reports: where a user's data went.")


def register(app: typer.Typer) -> None:
    app.command("event")(event_command)
    app.command("worker")(worker_command)
    app.add_typer(revoke_app, name="revoke")
    app.command("compliance")(compliance_command)
    app.add_typer(report_app, name="report")


def event_command(
    event_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="post_delete, like_delete, user_delete, user_protect, …")
    ],
    user: Annotated[int, typer.Argument(min=0, max=MAX_ID, help="The platform user_id the event is about.")],
    post: Annotated[
        int | None,
        typer.Option(
            "--post", min=0, max=MAX_ID, help="The post (post_delete, like/repost/bookmark_delete)."
        ),
    ] = None,
    country: Annotated[str | None, typer.Option(help="The new country (user_country_change).")] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="The sender's event id (retries are idempotent).")
    ] = None,
    at: AtOption = None,
    home: HomeOption = None,
) -> None:
    """Record a platform event; one that withdraws data queues its revocation in the same transaction."""
    from datalease.services.events import submit_events

    if at is not None:
        instant(at)  # the same range as every other --at; the event keeps the text as given
    raw: dict[str, Any] = {"type": event_type, "user_id": user}
    for name, value in (("post_id", post), ("country", country), ("id", event_id), ("at", at)):
        if value is not None:
            raw[name] = value
    (recorded,) = submit_events(workspace(home), [raw])
    verb = "recorded" if recorded.created else "already recorded"
    out.print(
        f"event {recorded.event_id} {verb}: {recorded.event.type} user {user}"
        + (f" post {post}" if post else "")
    )


@revoke_app.command("process")
def revoke_process(home: HomeOption = None) -> None:
    """Deliver every pending revocation now (the server's worker does this continuously)."""
    from datalease.services.revocation import deliver_pending

    result = deliver_pending(workspace(home))
    out.print(
        f"{result.intents} intent(s) processed: {result.rows_removed} row(s) withdrawn from {result.agreements} "
        f"agreement(s), {result.forget_entries} forget entr{'y' if result.forget_entries == 1 else 'ies'}, "
        f"{result.duration_ms} ms"
    )
    for failure in result.failures:
        err.print(
            f"error: deliveries to {failure.agreement_id} failed (failing since "
            f"{failure.since:%Y-%m-%d %H:%M:%S}Z, {failure.attempts} attempts): {failure.error}",
            markup=False,
            highlight=False,
            style="red",
        )
    if result.failures:
        raise typer.Exit(1)


def worker_command(
    once: Annotated[bool, typer.Option("--once", help="Run one batch, then exit.")] = False,
    home: HomeOption = None,
) -> None:
    """Run the revocation worker on its own: batches while intents are pending, a pause of
    DATALEASE_REVOCATION_WINDOW_S when there are none. SIGTERM or Ctrl-C lets the batch under way
    finish, then exits 0."""
    import signal
    import threading

    from datalease.revocation.bulk import BulkLoop, process_bulk
    from datalease.revocation.worker import BatchResult, process_pending, run_batches

    ws = workspace(home)
    ws.init()

    def report(result: BatchResult) -> None:
        if result.intents or result.rows_removed or result.failures:
            err.print(
                f"batch: {result.intents} intent(s) processed, {result.rows_removed} row(s) withdrawn, "
                f"{result.forget_entries} forget entries, {result.duration_ms} ms",
                highlight=False,
            )
        for failure in result.failures:
            err.print(
                f"error: deliveries to {failure.agreement_id} failed ({failure.attempts} attempts): "
                f"{failure.error}",
                markup=False,
                highlight=False,
                style="red",
            )

    if once:
        result = process_pending(ws, respect_backoff=True)
        report(result)
        bulk = process_bulk(ws)
        if bulk.chunks:
            err.print(
                f"bulk withdrawals: {bulk.rows_removed} row(s) in {bulk.chunks} chunk(s)", highlight=False
            )
        if result.failures:
            raise typer.Exit(1)
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    err.print(
        f"datalease worker on {ws.settings.resolved_home}: pausing {ws.settings.revocation_window_s} s when idle"
    )

    def failed(exc: Exception) -> None:
        err.print(f"error: revocation batch failed (will retry): {exc}", markup=False, highlight=False)

    # Bulk withdrawals on a thread of their own, so single opt-outs never queue behind them.
    bulk_loop = BulkLoop(ws, window_s=ws.settings.revocation_window_s, on_error=failed)
    bulk_loop.start()
    try:
        run_batches(ws, stop, window_s=ws.settings.revocation_window_s, on_error=failed, on_batch=report)
    finally:
        bulk_loop.stop()
    err.print("datalease worker stopped")


def compliance_command(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Per agreement: forget entries pending, acknowledged and overdue; time to delete and to acknowledge."""
    from datalease.services.revocation import compliance_report

    report = compliance_report(workspace(home))
    if as_json:
        print_json(asdict(report))
        return
    out.print(f"revocation intents waiting for delivery: {report.intents_waiting}")
    for failure in report.failures:
        out.print(
            f"[red]deliveries to {failure.agreement_id} failing since {failure.since:%Y-%m-%d %H:%M:%S}Z "
            f"({failure.attempts} attempts): {failure.error}[/red]",
            highlight=False,
        )
    table = Table(
        "agreement",
        "partner",
        "entries",
        "pending",
        "acked",
        "overdue",
        "oldest deadline",
        "to delete p50/p95",
        "to ack p50",
    )
    for a in report.agreements:
        table.add_row(
            a.agreement_id,
            a.partner,
            str(a.entries),
            str(a.pending),
            str(a.acknowledged),
            f"[red]{a.overdue}[/red]" if a.overdue else "0",
            f"{a.oldest_pending_deadline:%Y-%m-%d %H:%M}" if a.oldest_pending_deadline else "",
            _seconds_text(a.to_delete.p50, a.to_delete.p95),
            _seconds_text(a.to_ack.p50, None),
        )
    out.print(table)
    for a in report.agreements:
        if a.end_state:
            out.print(f"{a.agreement_id}: {a.end_state}", markup=False, highlight=False)


def _seconds_text(p50: float | None, p95: float | None) -> str:
    if p50 is None:
        return ""
    return f"{p50:.1f}s" + (f" / {p95:.1f}s" if p95 is not None else "")


@report_app.command("user")
def report_user(user: str, as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Where USER's data went: per agreement, rows shared now, first/last release, revoked, forget acks."""
    from datalease.reporting.earnings import earnings_json, user_earnings
    from datalease.services.revocation import where_data_went

    ws = workspace(home)
    user_id, reports = where_data_went(ws, user)
    earned = user_earnings(ws, user_id)
    if as_json:
        print_json(
            {
                "user_id": user_id,
                "agreements": [asdict(r) for r in reports],
                "earnings": earnings_json(earned),
            }
        )
        return
    if not reports:
        out.print(f"user {user_id}: no agreement has released data yet")
    for r in reports:
        shared = ", ".join(f"{c} {n}" for c, n in r.rows_shared.items()) or "nothing"
        since = f"releases {r.first_release}–{r.last_release}" if r.first_release else "never included"
        out.print(
            f"[bold]{r.agreement_id}[/bold] ({r.partner}, {r.status}): shared now: {shared}; {since}; "
            f"rows revoked {r.rows_revoked}"
        )
        for sentence in r.why:
            out.print(f"  why: {sentence}", markup=False, highlight=False)
        for line in r.forget:
            ack = (
                f"acknowledged {line.acknowledged_at:%Y-%m-%d %H:%M}" if line.acknowledged_at else line.state
            )
            out.print(
                f"  forget {line.scope} ({line.reason_code}, {line.rows} rows) delivered "
                f"{line.delivered_at:%Y-%m-%d %H:%M}, deadline {line.deadline:%Y-%m-%d %H:%M}: {ack}"
            )
    for e in earned:
        out.print(
            f"earned {e.period} from {e.partner} ({e.agreement_id}): {e.amount} {e.currency} for "
            f"{e.record_days} record-days, {e.status}",
            markup=False,
        )
