"""Invoices and a payout run over a real month of releases (tests/billing/billing_world.py).

Tests run in file order on one history: June is invoiced, credited, re-invoiced, then paid out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from billing_world import JUNE, OPT_OUT, QUERIES, REBUILD, History, oracle_row_micros, releases_of
from release_world import ACME, LUMEN, SENTIMETRICS, T0, run_cli

from datalease.billing.period import BillingError
from datalease.licensing.registry import get_agreement
from datalease.releases.model import KIND_BUILD
from datalease.releases.support_tables import is_licensed_data
from datalease.services.billing import build_invoices, credit_invoice, invoices
from datalease.services.payouts import build_payouts, fund_inputs, payout_run
from datalease.store.billing import get_payout_run

NOW = datetime(2026, 7, 2, 9, tzinfo=UTC)
MICROS = 1_000_000


def test_invoices_apply_the_pricing_to_the_month(history: History) -> None:
    ws = history.ws
    preview = build_invoices(ws, "2026-06", dry_run=True, now=NOW)
    assert not preview.issued and invoices(ws) == []  # a dry run writes nothing
    run = build_invoices(ws, "2026-06", now=NOW)
    by_agreement = {i.agreement_id: i for i in run.issued}
    assert set(by_agreement) == {LUMEN, SENTIMETRICS, ACME}
    assert [i.number for i in run.issued] == ["INV-000001", "INV-000002", "INV-000003"]
    # flat_annual: 30 of the 365 days of the contract year 2026.
    lumen = by_agreement[LUMEN]
    assert lumen.total == (Decimal(60_000_000) * 30 / 365).quantize(Decimal("0.01"), ROUND_HALF_UP)
    # per_1k_records: rows added by June's builds only; the revocation, the forget table, July: nothing.
    builds = [
        r for r in releases_of(ws, SENTIMETRICS) if r.kind == KIND_BUILD and JUNE.start <= r.as_of < JUNE.end
    ]
    assert [r.as_of for r in builds] == [T0, REBUILD]
    records = sum(t.rows_added for r in builds for t in r.tables if is_licensed_data(t.category))
    assert records > 0
    senti = by_agreement[SENTIMETRICS]
    assert senti.total == (Decimal("2.50") * records / 1000).quantize(Decimal("0.01"), ROUND_HALF_UP)
    source = json.loads(senti.body)["lines"][0]["source"]
    assert source["records"] == records
    assert [r["release"] for r in source["releases"]] == [r.release_id for r in builds]
    # per_query: June's metered queries (a metadata request is not a query; July's is not June's).
    acme = by_agreement[ACME]
    assert acme.total == Decimal("0.01") * QUERIES
    assert json.loads(acme.body)["lines"][0]["source"]["queries"] == QUERIES
    for inv in run.issued:
        assert inv.sha256 == hashlib.sha256(inv.body.encode()).hexdigest()
        assert inv.currency == "USD" and inv.period == "2026-06"


def test_an_invoiced_month_is_not_invoiced_twice_and_a_credit_note_reopens_it(history: History) -> None:
    ws = history.ws
    (senti,) = invoices(ws, agreement_id=SENTIMETRICS)
    with pytest.raises(BillingError, match=re.escape(f"already invoiced for 2026-06 ({senti.number})")):
        build_invoices(ws, "2026-06", agreement_id=SENTIMETRICS, now=NOW)
    again = build_invoices(ws, "2026-06", now=NOW)
    assert not again.issued and {a for a, _ in again.skipped} == {LUMEN, SENTIMETRICS, ACME}
    note = credit_invoice(ws, senti.number.lower(), now=NOW)
    assert note.number == "CN-000001" and note.refers_to == senti.number  # type: ignore[union-attr]
    with pytest.raises(BillingError, match="already credited"):
        credit_invoice(ws, senti.number, now=NOW)
    (reissued,) = build_invoices(ws, "2026-06", agreement_id=SENTIMETRICS, now=NOW).issued
    assert reissued.number == "INV-000004" and reissued.total == -note.total


@pytest.mark.parametrize(
    ("period", "agreement", "message"),
    [
        ("2027-01", None, "has not ended yet"),
        ("2026-07", None, "has not ended yet"),  # still running on NOW
        ("2025-12", ACME, "before the term of agreement acme-insights-2026"),
        ("2027-02", LUMEN, "has not ended yet"),
        ("2026-13", None, "expected a month written YYYY-MM"),
    ],
)
def test_bad_periods_are_refused_and_nothing_is_written(
    history: History, period: str, agreement: str | None, message: str
) -> None:
    before = invoices(history.ws)
    with pytest.raises(BillingError, match=message):
        build_invoices(history.ws, period, agreement_id=agreement, now=NOW)
    assert invoices(history.ws) == before


def test_record_days_come_from_the_lineage_and_stop_at_the_opt_out(history: History) -> None:
    ws = history.ws
    inputs, missing = fund_inputs(ws, JUNE)
    assert missing == []
    got = {i.agreement_id: dict(i.row_micros) for i in inputs}
    for agreement in (LUMEN, SENTIMETRICS, ACME):
        gaps = {history.opted_out: (OPT_OUT, JUNE.end)}  # they never opt back in
        assert got[agreement] == oracle_row_micros(ws, agreement, JUNE, gaps), agreement
    # The person who opted out earned for their rows from T0 to the opt-out instant, not one moment more.
    first = releases_of(ws, SENTIMETRICS)[0]
    from billing_world import rows_by_key

    from datalease.releases.keys import agreement_secret, user_key

    key = user_key(agreement_secret(ws.master_key, SENTIMETRICS), history.opted_out)
    rows = sum(
        rows_by_key(ws, SENTIMETRICS, t.category, t.table_version)[key]
        for t in first.tables
        if is_licensed_data(t.category)
    )
    assert rows > 0
    assert got[SENTIMETRICS][history.opted_out] == rows * int((OPT_OUT - T0).total_seconds()) * MICROS
    # Everyone else held since T0 earns for the whole rest of June.
    assert max(got[SENTIMETRICS].values()) <= rows * int((JUNE.end - T0).total_seconds()) * MICROS


def test_the_payout_run_divides_each_fund_exactly(history: History) -> None:
    ws = history.ws
    with pytest.raises(BillingError, match="has not ended yet"):
        build_payouts(ws, "2026-07", now=NOW)
    dry = build_payouts(ws, "2026-06", minimum=Decimal("1.00"), dry_run=True, now=NOW)
    with ws.session() as session:
        assert get_payout_run(session, "2026-06") is None
    built = build_payouts(ws, "2026-06", minimum=Decimal("1.00"), now=NOW)
    assert built.run.lines == dry.run.lines
    run = payout_run(ws, "2026-06")
    policy = ws.require_policy()
    with ws.session() as session:
        shares = {
            a: get_agreement(session, a, policy).pricing.fund_share for a in (LUMEN, SENTIMETRICS, ACME)
        }
    revenue = {i.agreement_id: Decimal(0) for i in invoices(ws)}
    for inv in invoices(ws, period="2026-06"):
        revenue[inv.agreement_id] += inv.total
    inputs = {i.agreement_id: i for i in fund_inputs(ws, JUNE)[0]}
    for fund in run.funds:
        assert fund.revenue == revenue[fund.agreement_id]
        assert fund.fund == (fund.revenue * shares[fund.agreement_id] / 100).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        earned = sum(
            Decimal(ln.agreements[fund.agreement_id]["earned"])
            for ln in run.lines
            if fund.agreement_id in ln.agreements
        )
        assert earned == fund.fund  # the parts sum exactly: payouts + platform share = revenue
        holders = {u for u, m in inputs[fund.agreement_id].row_micros.items() if m > 0}
        paid_people = {ln.user_id for ln in run.lines if fund.agreement_id in ln.agreements}
        assert paid_people == holders  # nobody without rows in the period
    for line in run.lines:
        assert line.paid + line.carried_out == line.earned + line.carried_in
        assert (line.paid > 0) == (line.earned >= Decimal("1.00"))  # the first run carries nothing in
    assert any(ln.carried_out > 0 for ln in run.lines) and any(ln.paid > 0 for ln in run.lines)
    with pytest.raises(BillingError, match="payout runs are final"):
        build_payouts(ws, "2026-06", now=NOW)


def test_the_cli_renders_and_exports(history: History) -> None:
    home = history.home
    html = run_cli(home, "invoice", "show", "INV-000001", "--format", "html")
    assert html.returncode == 0, html.stderr
    assert "<h1>Invoice INV-000001</h1>" in html.stdout and "<script" not in html.stdout
    rows = list(
        csv.DictReader(io.StringIO(run_cli(home, "invoice", "show", "CN-000001", "--format", "csv").stdout))
    )
    credited = rows[0]["refers_to"]
    assert Decimal(rows[0]["amount"]) < 0
    listed = json.loads(run_cli(home, "invoice", "list", "--json").stdout)
    status = {i["number"]: i["status"] for i in listed}
    assert status[credited] == "credited" and status["CN-000001"] == "credit note"
    export = run_cli(home, "payouts", "export", "--period", "2026-06")
    assert export.returncode == 0, export.stderr
    paid = list(csv.DictReader(io.StringIO(export.stdout)))
    run = payout_run(history.ws, "2026-06")
    assert sum(Decimal(r["amount"]) for r in paid) == run.paid("USD") > 0
    report = json.loads(run_cli(home, "billing", "report", "--json").stdout)
    assert report["funds"][0]["period"] == "2026-06"
    assert {d["number"] for d in report["invoices_due"]} == {n for n, s in status.items() if s == "issued"}
    assert len(report["invoices_due"]) == 3
    future = run_cli(home, "invoice", "build", "--period", "2099-01")
    assert future.returncode == 2 and "has not ended yet" in future.stderr
    assert json.loads(run_cli(home, "invoice", "list", "--json").stdout) == listed


def test_july_through_the_cli_carries_june_over(history: History) -> None:
    home = history.home
    built = run_cli(home, "invoice", "build", "--period", "2026-07", "--at", "2026-08-02", "--json")
    assert built.returncode == 0, built.stderr
    assert {i["agreement"] for i in json.loads(built.stdout)["invoices"]} == {LUMEN, SENTIMETRICS, ACME}
    dry = run_cli(home, "payouts", "build", "--period", "2026-07", "--minimum", "1.00", "--at", "2026-08-02",
                  "--dry-run", "--json")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    with history.ws.session() as session:
        assert get_payout_run(session, "2026-07") is None  # a dry run writes nothing
    done = run_cli(home, "payouts", "build", "--period", "2026-07", "--minimum", "1.00", "--at", "2026-08-02")
    assert done.returncode == 0 and "payout run 2026-07 written" in done.stdout, done.stderr
    june, july = payout_run(history.ws, "2026-06"), payout_run(history.ws, "2026-07")
    assert len(json.loads(dry.stdout)["lines"]) == len(july.lines)
    carried = {(ln.user_id, ln.currency): ln.carried_out for ln in june.lines if ln.carried_out > 0}
    assert carried
    later = {(ln.user_id, ln.currency): ln for ln in july.lines}
    for slot, amount in carried.items():
        assert later[slot].carried_in == amount  # what June carried over, July carries in
        assert later[slot].paid + later[slot].carried_out == later[slot].earned + amount
    assert history.opted_out not in {ln.user_id for ln in july.lines if ln.earned > 0}  # gone since June
    again = run_cli(home, "payouts", "build", "--period", "2026-06", "--at", "2026-08-02")
    assert again.returncode == 2 and "payout runs are final" in again.stderr
