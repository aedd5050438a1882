"""Issue 18's pure pieces: the CAWG rights follow the agreement's purposes (a third-party-sharing
agreement allows no training), report periods parse as documented and refuse anything else, and the
public report's Ed25519 signature holds for the document as signed and fails for any change."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from datalease.errors import UserError
from datalease.licensing.model import Agreement, Pricing
from datalease.licensing.rights import table_properties, training_mining, uses_of
from datalease.reporting.period import parse_period
from datalease.services.public_report import canonical, public_key_b64, signing_key, verify_document

BASE = Agreement(
    agreement_id="a-2026",
    partner="p",
    status="active",
    purposes=("train_ai_system",),
    categories=("posts",),
    fields={"posts": ("text",)},
    pricing=Pricing("flat_annual", Decimal("1"), "USD"),
    term_start=datetime(2026, 1, 1, tzinfo=UTC),
    term_end=datetime(2027, 1, 1, tzinfo=UTC),
    deletion_sla_hours=24,
)


@pytest.mark.parametrize(
    ("purposes", "expected"),
    [
        (("train_ai_system",), ("constrained", "constrained", "notAllowed", "constrained")),
        (("train_ai_system.non_generative",), ("constrained", "notAllowed", "notAllowed", "constrained")),
        (("third_party_sharing.independent",), ("notAllowed", "notAllowed", "constrained", "constrained")),
    ],
)
def test_rights_follow_the_purposes(purposes: tuple[str, ...], expected: tuple[str, ...]) -> None:
    agreement = replace(BASE, purposes=purposes)
    entries = training_mining(agreement, "posts")
    assert tuple(e.use for e in entries.values()) == expected
    assert uses_of(table_properties(agreement, "posts")) == dict(zip(entries, expected, strict=True))
    assert all(
        "within 24 hours" in (e.constraint_info or "") for e in entries.values() if e.use == "constrained"
    )


def test_periods() -> None:
    assert (parse_period("2026").start, parse_period("2026").end) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    q4 = parse_period("2026-Q4")
    assert (q4.start.month, q4.end) == (10, datetime(2027, 1, 1, tzinfo=UTC))
    assert parse_period("2026-12").end == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_period("2026-01-01..2026-02-01").contains(datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    for bad in ("2026-13", "2026-Q5", "26", "2026-02-01..2026-01-01", "last year"):
        with pytest.raises(UserError, match="expected a year"):
            parse_period(bad)


def test_signature_holds_for_the_document_and_nothing_else() -> None:
    key = b"k" * 32
    document = {"period": {"label": "2026"}, "revocations": {"delivered": 3}, "regulator_orders": []}
    signature = signing_key(key).sign(canonical(document))
    signed = {
        **document,
        "signature": {
            "alg": "Ed25519",
            "public_key": public_key_b64(key),
            "value": base64.b64encode(signature).decode(),
        },
    }
    assert verify_document(signed)
    assert verify_document(signed, public_key_b64(key))
    assert not verify_document(signed, public_key_b64(b"x" * 32))
    assert not verify_document({**signed, "revocations": {"delivered": 4}})
    assert not verify_document({k: v for k, v in signed.items() if k != "signature"})
