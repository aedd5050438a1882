"""Payout runs: the contributor fund of an ended month, divided by record-days; list and export.

Runs are final and built in order: a period that has a run, or that is before the latest run,
cannot get a (new) run. Revenue is what the period's invoices say (less credit notes); an agreement
of the period that has no invoice contributes nothing until one is issued (it is listed as missing).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from datalease.billing.model import PayoutRun, record_days
from datalease.billing.payouts import ZERO, FundInput, build_run, check_minimum
from datalease.billing.period import BillingError, Period, ended_period, parse_period
from datalease.billing.recorddays import opt_out_gaps, people_keys, row_micros
from datalease.licensing.registry import load_agreements
from datalease.releases.keys import agreement_secret
from datalease.store.billing import (
    effective_instants,
    get_payout_run,
    latest_payout_period,
    list_invoices,
    list_payout_runs,
    lock_billing,
    save_payout_run,
)
from datalease.store.forget import forget_entries
from datalease.store.releases import list_releases
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

DEFAULT_MINIMUM = Decimal("5.00")


@dataclass(frozen=True)
class PayoutBuild:
    run: PayoutRun
    dry_run: bool
    missing: tuple[str, ...]  # agreements of the period (in term, with releases) that have no invoice


def fund_inputs(ws: Workspace, period: Period) -> tuple[list[FundInput], list[str]]:
    """Each agreement's revenue for the period and the record-days of the people its partner held."""
    policy = ws.require_policy()
    with ws.session() as session:
        agreements = load_agreements(session, policy)
        invoices = list_invoices(session, period=period.label)
        history = {a.agreement_id: list_releases(session, a.agreement_id) for a in agreements}
        entries = {a.agreement_id: forget_entries(session, agreement_id=a.agreement_id) for a in agreements}
        effective = effective_instants(session, (e.intent_id for found in entries.values() for e in found))
    user_ids = ws.lake.read("users").column("user_id").to_pylist() if ws.lake.exists("users") else []
    inputs, missing = [], []
    for agreement in agreements:
        mine = [i for i in invoices if i.agreement_id == agreement.agreement_id]
        releases = history[agreement.agreement_id]
        if not mine:
            in_term = agreement.term_start < period.end and agreement.term_end > period.start
            if in_term and releases and agreement.status != "draft":
                missing.append(agreement.agreement_id)
            continue
        revenue = sum((i.total for i in mine), ZERO)  # credit notes are negative
        secret = agreement_secret(ws.master_key, agreement.agreement_id)
        micros = row_micros(
            ws.share_dir(agreement.agreement_id),
            releases,
            period,
            people_keys(secret, user_ids),
            opt_out_gaps(entries[agreement.agreement_id], releases, effective),
            memory_limit=ws.settings.engine_memory,
        )
        inputs.append(
            FundInput(agreement.agreement_id, mine[0].currency, revenue, agreement.pricing.fund_share, micros)
        )
    return inputs, missing


def build_payouts(
    ws: Workspace,
    period_text: str,
    *,
    minimum: Decimal = DEFAULT_MINIMUM,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PayoutBuild:
    """`payouts build`: compute (and unless `dry_run`, store) the run of an ended month."""
    when = now or utc_now()
    period = ended_period(period_text, when)
    check_minimum(minimum)
    ws.init()
    with ws.session() as session:
        latest = latest_payout_period(session)
        previous = get_payout_run(session, latest) if latest is not None else None
    if latest is not None and latest >= period.label:
        raise BillingError(
            f"period {period}: payout runs are final and built in order; the latest run is {latest}, "
            f"expected a month after it"
        )
    inputs, missing = fund_inputs(ws, period)
    carried = {(ln.user_id, ln.currency): ln.carried_out for ln in previous.lines} if previous else {}
    run = build_run(period, inputs, carried, minimum, when)
    if not dry_run:
        with ws.write_session() as session, session.begin():
            lock_billing(session)
            if (latest_payout_period(session) or "") >= period.label:  # a concurrent run came first
                raise BillingError(f"period {period}: a payout run for it or a later month was just written")
            save_payout_run(session, run)
    return PayoutBuild(run, dry_run, tuple(missing))


def payout_runs(ws: Workspace) -> list[PayoutRun]:
    ws.init()
    with ws.session() as session:
        return list_payout_runs(session)


def payout_run(ws: Workspace, period_text: str) -> PayoutRun:
    period = parse_period(period_text)
    ws.init()
    with ws.session() as session:
        run = get_payout_run(session, period.label)
    if run is None:
        raise BillingError(f"period {period}: no payout run (see `datalease payouts list`)")
    return run


def export_csv(run: PayoutRun) -> str:
    """The lines paid in a run, for a payments provider: one row per person and currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "user_id", "currency", "amount", "record_days", "agreements", "reference"])
    for line in run.lines:
        if line.paid > 0:
            writer.writerow([run.period, line.user_id, line.currency, line.paid, record_days(line.row_micros),
                             ";".join(sorted(line.agreements)), f"payout-{run.period}-{line.user_id}-{line.currency}"])  # fmt: skip
    return out.getvalue()
