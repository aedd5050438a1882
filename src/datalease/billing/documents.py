"""Issued documents: numbers (`INV-000001`, `CN-000001`), the canonical JSON body and its sha256,
the due date (net 30), and renderings as JSON, CSV and printable HTML."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from datalease.billing.model import KIND_CREDIT_NOTE, KIND_INVOICE, Invoice, InvoiceDraft, InvoiceLine

PREFIX: Final = {KIND_INVOICE: "INV", KIND_CREDIT_NOTE: "CN"}
PAYMENT_TERMS_DAYS: Final = 30


def number(kind: str, sequence: int) -> str:
    return f"{PREFIX[kind]}-{sequence:06d}"


def _line(line: InvoiceLine) -> dict[str, Any]:
    return {
        "description": line.description,
        "quantity": line.quantity,
        "unit_price": str(line.unit_price),
        "amount": str(line.amount),
        "source": line.source,
    }


def issue(draft: InvoiceDraft, sequence: int, issued_at: datetime) -> Invoice:
    """Number, date and hash a draft. The body is canonical JSON (sorted keys), hashed as stored."""
    doc_number = number(draft.kind, sequence)
    due = issued_at + timedelta(days=PAYMENT_TERMS_DAYS)
    content = {
        "number": doc_number,
        "kind": draft.kind,
        "agreement": draft.agreement_id,
        "partner": draft.partner,
        "period": draft.period,
        "currency": draft.currency,
        "lines": [_line(line) for line in draft.lines],
        "total": str(draft.total),
        "refers_to": draft.refers_to,
        "issued_at": issued_at.isoformat(),
        "due_at": due.isoformat(),
    }
    body = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Invoice(
        doc_number,
        draft.kind,
        draft.agreement_id,
        draft.partner,
        draft.period,
        draft.currency,
        draft.total,
        draft.refers_to,
        issued_at,
        due,
        body,
        hashlib.sha256(body.encode("utf-8")).hexdigest(),
    )


def body_sha256(invoice: Invoice) -> str:
    return hashlib.sha256(invoice.body.encode("utf-8")).hexdigest()


def lines_of(invoice: Invoice) -> tuple[InvoiceLine, ...]:
    content = json.loads(invoice.body)
    return tuple(
        InvoiceLine(
            ln["description"], ln["quantity"], Decimal(ln["unit_price"]), Decimal(ln["amount"]), ln["source"]
        )
        for ln in content["lines"]
    )


def to_json(invoice: Invoice) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(invoice.body)
    content["sha256"] = invoice.sha256
    return content


def draft_to_json(draft: InvoiceDraft) -> dict[str, Any]:
    return {
        "number": None,
        "kind": draft.kind,
        "agreement": draft.agreement_id,
        "partner": draft.partner,
        "period": draft.period,
        "currency": draft.currency,
        "lines": [_line(line) for line in draft.lines],
        "total": str(draft.total),
        "refers_to": draft.refers_to,
    }


def to_csv(invoice: Invoice) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "kind", "agreement", "period", "currency", "description", "quantity",
                     "unit_price", "amount", "refers_to", "sha256"])  # fmt: skip
    for line in lines_of(invoice):
        writer.writerow([invoice.number, invoice.kind, invoice.agreement_id, invoice.period, invoice.currency,
                         line.description, line.quantity, line.unit_price, line.amount,
                         invoice.refers_to or "", invoice.sha256])  # fmt: skip
    return out.getvalue()


def to_html(invoice: Invoice) -> str:
    """A standalone, printable page (no scripts, no external resources)."""
    e = html.escape
    title = "Credit note" if invoice.kind == KIND_CREDIT_NOTE else "Invoice"
    rows = "".join(
        f"<tr><td>{e(ln.description)}</td><td>{e(ln.quantity)}</td>"
        f"<td class=n>{e(str(ln.unit_price))}</td><td class=n>{e(str(ln.amount))}</td></tr>"
        f"<tr class=src><td colspan=4>from: {e(json.dumps(ln.source, sort_keys=True))}</td></tr>"
        for ln in lines_of(invoice)
    )
    refers = f"<p>Credits invoice <b>{e(invoice.refers_to)}</b>.</p>" if invoice.refers_to else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{title} {e(invoice.number)}</title><style>"
        "body{font-family:sans-serif;max-width:50em;margin:2em auto}table{width:100%;border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ccc;padding:.3em;text-align:left}.n{text-align:right}"
        ".src td{font-size:.8em;color:#555}@media print{.noprint{display:none}}</style></head><body>"
        f"<h1>{title} {e(invoice.number)}</h1>"
        f"<p>To <b>{e(invoice.partner)}</b>, agreement <b>{e(invoice.agreement_id)}</b>, "
        f"period <b>{e(invoice.period)}</b>.</p>"
        f"<p>Issued {e(invoice.issued_at.date().isoformat())}, due {e(invoice.due_at.date().isoformat())}.</p>"
        f"{refers}<table><thead><tr><th>Item</th><th>Quantity</th><th class=n>Unit price</th>"
        f"<th class=n>Amount ({e(invoice.currency)})</th></tr></thead><tbody>{rows}</tbody>"
        f"<tfoot><tr><th colspan=3>Total</th><th class=n>{e(str(invoice.total))} {e(invoice.currency)}</th>"
        f"</tr></tfoot></table><p><small>sha256 {e(invoice.sha256)}</small></p></body></html>"
    )
