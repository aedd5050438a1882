"""The public transparency report per period (issue 18): a JSON document signed with Ed25519 under a
key derived from the platform key, and the numbers the public page shows.

The document: partners and purposes (agreements with a release in the period), people per region (on
the platform / included in the last release of the period of some agreement / opted out at the period's
end), revocations delivered in the period and their request → delivery latency (p50/p95),
acknowledgements of those entries (on time / late / overdue / pending), and the regulator orders in force
(`regulator_orders_in`, the one function issue 14's orders plug into; an empty list until then).

Signature: Ed25519 over the canonical JSON (sorted keys, no spaces, UTF-8) of the document without its
`signature` member; the public key is in the document and at `/transparency/key`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Final

import pyarrow as pa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from deltalake import DeltaTable

from datalease.consent.snapshot import consent_snapshot
from datalease.licensing.registry import get_agreement
from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases.keys import agreement_secret, user_key
from datalease.releases.support_tables import is_licensed_data
from datalease.reporting.period import Period, parse_period
from datalease.reporting.public_report import acknowledgements, people_by_region, revocations
from datalease.store.forget import forget_entries
from datalease.store.licensing import list_agreements
from datalease.store.orders import list_orders
from datalease.store.releases import list_releases
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

KEY_CONTEXT: Final = b"datalease/public-report/ed25519/v1"


def signing_key(master_key: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hmac.new(master_key, KEY_CONTEXT, hashlib.sha256).digest())


def public_key_b64(master_key: bytes) -> str:
    raw = signing_key(master_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def canonical(document: dict[str, Any]) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_document(document: dict[str, Any], public_key: str | None = None) -> bool:
    """Whether the document's signature holds (under `public_key`, default the one it names)."""
    signature = document.get("signature") or {}
    key = public_key or signature.get("public_key")
    if signature.get("alg") != "Ed25519" or not key or not signature.get("value"):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(
            base64.b64decode(signature["value"]), canonical(document)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def regulator_orders_in(ws: Workspace, period: Period) -> list[dict[str, Any]]:
    """The regulator orders in force at some instant of `period`, as the public may see them
    (authority, reference, scope, from, until, lifted)."""
    with ws.session() as session:
        orders = list_orders(session)
    shown = []
    for order in sorted(orders, key=lambda o: (o.effective, o.order_id)):
        ends = min((e for e in (order.until, order.lifted_at) if e is not None), default=None)
        if order.effective >= period.end or (ends is not None and ends <= period.start):
            continue
        shown.append(
            {
                "order_id": order.order_id,
                "issued_by": order.issued_by,
                "reference": order.reference,
                "regions": list(order.regions),
                "countries": list(order.countries),
                "categories": list(order.categories),
                "purposes": list(order.purposes),
                "effective": order.effective.isoformat(),
                "until": order.until.isoformat() if order.until else None,
                "lifted_at": order.lifted_at.isoformat() if order.lifted_at else None,
            }
        )
    return shown


def _included(
    ws: Workspace, agreement_id: str, release_tables: list[tuple[str, int]], users: list[int]
) -> set[int]:
    keys: set[str] = set()
    for category, version in release_tables:
        if not is_licensed_data(category):
            continue
        table = DeltaTable(str(ws.share_dir(agreement_id) / category), version=version)
        if "user_key" in table.schema().to_arrow().names:
            column = table.to_pyarrow_table(columns=["user_key"]).column("user_key")
            keys.update(str(k) for k in pa.compute.unique(column).to_pylist())
    secret = agreement_secret(ws.master_key, agreement_id)
    return {u for u in users if user_key(secret, u) in keys}


def build_report(ws: Workspace, period_text: str, now: datetime | None = None) -> dict[str, Any]:
    """The signed document for one period."""
    period = parse_period(period_text)
    when = now or utc_now()
    policy = ws.require_policy()
    lake_users = ws.lake.read("users").select(["user_id", "country"]).to_pylist()
    regions = {int(u["user_id"]): policy.region_of(u["country"]) for u in lake_users}
    partners: dict[str, list[dict[str, Any]]] = {}
    included: set[int] = set()
    with ws.session() as session:
        records = list_agreements(session)
        histories = {r.agreement_id: list_releases(session, r.agreement_id) for r in records}
        entries = [e for e in forget_entries(session) if period.contains(e.delivered_at)]
        parsed = {r.agreement_id: get_agreement(session, r.agreement_id, policy) for r in records}
    from_agreements = {r.agreement_id: r for r in records}
    for agreement_id, history in sorted(histories.items()):
        mine = [r for r in history if period.contains(r.built_at)]
        if not mine:
            continue
        record = from_agreements[agreement_id]
        partners.setdefault(record.partner, []).append(
            {
                "agreement": agreement_id,
                "status": record.status,
                "purposes": list(parsed[agreement_id].purposes),
                "categories": list(parsed[agreement_id].categories),
                "releases": [r.release_id for r in mine],
            }
        )
        last = mine[-1]
        included |= _included(
            ws, agreement_id, [(t.category, t.table_version) for t in last.tables], list(regions)
        )
    snapshot = consent_snapshot(ws.engine, min(period.end, when)).table.to_pylist()
    opted_out = {int(r["user_id"]) for r in snapshot if r["key"] == MASTER_KEY and r["value"] is False}
    document: dict[str, Any] = {
        "report": "datalease public transparency report",
        "platform": policy.name,
        "period": {"label": period.label, "start": period.start.isoformat(), "end": period.end.isoformat()},
        "generated_at": when.isoformat(),
        "partners": [{"partner": p, "agreements": a} for p, a in sorted(partners.items())],
        "people_by_region": people_by_region(regions, included, opted_out),
        "revocations": revocations(entries),
        "acknowledgements": acknowledgements(entries, when),
        "regulator_orders": regulator_orders_in(ws, period),
    }
    signature = signing_key(ws.master_key).sign(canonical(document))
    document["signature"] = {
        "alg": "Ed25519",
        "public_key": public_key_b64(ws.master_key),
        "value": base64.b64encode(signature).decode(),
        "signed": "canonical JSON (sorted keys, no spaces, UTF-8) of the document without `signature`",
    }
    return document
