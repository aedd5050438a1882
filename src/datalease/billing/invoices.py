"""One invoice per agreement per billing period, from its pricing (licensing.pricing does the sums).

- `flat_annual`: the fee pro-rated by the days (to the microsecond) of the term inside the period.
- `per_1k_records`: records **delivered** in the period: the `rows_added` of the agreement's build
  releases whose instant falls in the period — new rows and new versions of changed rows. Re-reads by
  the partner are not deliveries; revocation and optimize releases deliver nothing; the forget table
  is not data.
- `per_query`: the metered queries of the period (table and change-feed queries).

Each line carries the release ids and rows, or the usage figures, it comes from. A credit note is the
original's lines negated, referring to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from datalease.billing.model import KIND_CREDIT_NOTE, KIND_INVOICE, Invoice, InvoiceDraft, InvoiceLine
from datalease.billing.period import BillingError, Period
from datalease.licensing.model import Agreement, describe_term
from datalease.licensing.pricing import charge_agreement, flat_share
from datalease.releases.model import KIND_BUILD, Release
from datalease.releases.support_tables import is_licensed_data
from datalease.sharing.model import UsageTotal


def release_instant(release: Release) -> datetime:
    """When a release became the partner's snapshot: a build's as-of; a revocation's (or an
    optimize's) commit, which keeps the as-of of the build it amends."""
    return release.as_of if release.kind == KIND_BUILD else release.built_at


def check_in_term(agreement: Agreement, period: Period) -> None:
    term = describe_term(agreement.term_start, agreement.term_end)
    if period.end <= agreement.term_start:
        raise BillingError(
            f"period {period}: before the term of agreement {agreement.agreement_id} ({term}); "
            "expected a month the term covers"
        )
    if period.start >= agreement.term_end:
        raise BillingError(
            f"period {period}: after the term of agreement {agreement.agreement_id} ended ({term}); "
            "expected a month the term covers"
        )


def delivered(releases: Sequence[Release], period: Period) -> list[tuple[int, int]]:
    """(release id, records delivered) of the agreement's build releases in the period."""
    found = []
    for release in releases:
        if release.kind != KIND_BUILD or not period.start <= release_instant(release) < period.end:
            continue
        rows = sum(t.rows_added for t in release.tables if is_licensed_data(t.category))
        found.append((release.release_id, rows))
    return found


def draft_invoice(
    agreement: Agreement,
    period: Period,
    releases: Sequence[Release],
    usage: Sequence[UsageTotal],
) -> InvoiceDraft:
    """The invoice of `agreement` for `period`. Raises BillingError outside the term."""
    check_in_term(agreement, period)
    pricing = agreement.pricing
    if pricing.model == "flat_annual":
        years = flat_share(period.start, period.end, agreement.term_start, agreement.term_end)
        start, end = max(period.start, agreement.term_start), min(period.end, agreement.term_end)
        amount = charge_agreement(agreement, period_start=period.start, period_end=period.end)
        line = InvoiceLine(
            f"Licence fee, {period} ({describe_term(agreement.term_start, agreement.term_end)})",
            f"{Decimal(years.numerator) / Decimal(years.denominator):.6f} contract years",
            pricing.amount,
            amount,
            {
                "term_start": agreement.term_start.isoformat(),
                "term_end": agreement.term_end.isoformat(),
                "billed_from": start.isoformat(),
                "billed_until": end.isoformat(),
                "days_in_term": str(Decimal((end - start).total_seconds()) / 86400),
                "contract_years": f"{years.numerator}/{years.denominator}",
            },
        )
    elif pricing.model == "per_1k_records":
        releases_in = delivered(releases, period)
        records = sum(rows for _, rows in releases_in)
        line = InvoiceLine(
            f"Records delivered in {period} (new rows released; re-reads are not charged)",
            f"{records:,} records",
            pricing.amount,
            charge_agreement(agreement, period_start=period.start, period_end=period.end, records=records),
            {"records": records, "releases": [{"release": r, "rows_added": n} for r, n in releases_in]},
        )
    elif pricing.model == "per_query":
        mine = [u for u in usage if u.agreement_id == agreement.agreement_id and u.month == period.label]
        queries = sum(u.queries for u in mine)
        line = InvoiceLine(
            f"Queries served in {period}",
            f"{queries:,} queries",
            pricing.amount,
            charge_agreement(agreement, period_start=period.start, period_end=period.end, queries=queries),
            {
                "queries": queries,
                "requests": sum(u.requests for u in mine),
                "files": sum(u.files for u in mine),
                "rows": sum(u.rows for u in mine),
                "bytes": sum(u.bytes for u in mine),
            },
        )
    else:
        raise BillingError(f"agreement {agreement.agreement_id}: pricing model {pricing.model!r} is unknown")
    return InvoiceDraft(
        KIND_INVOICE, agreement.agreement_id, agreement.partner, period.label, pricing.currency, (line,)
    )


def credit_note_for(original: Invoice, lines: Sequence[InvoiceLine]) -> InvoiceDraft:
    """A credit note reversing `original` (whose `lines` are given): every amount negated."""
    if original.kind != KIND_INVOICE:
        raise BillingError(f"{original.number}: a credit note cannot be credited; expected an invoice")
    return InvoiceDraft(
        KIND_CREDIT_NOTE,
        original.agreement_id,
        original.partner,
        original.period,
        original.currency,
        tuple(
            replace(line, amount=-line.amount, description=f"Credit: {line.description}") for line in lines
        ),
        refers_to=original.number,
    )
