"""Consent receipts: one signed JSON document per recorded change (ISO/IEC TS 27560 fields).

A receipt names the subject, the controller, the purposes and categories the setting covers, the
notice in force when the choice was made (policy version and the notice's sha256), the time, the
method (the surface it was made on) and the state (given or withdrawn), plus the setting itself and
its place in the hash chain (seq, hash, prev_hash). It is signed with Ed25519 over its canonical JSON
(sorted keys, no whitespace, ASCII) without the `signature` member, and stored in exactly that
canonical form with the signature added: a file that is not byte-for-byte canonical is refused, so
any byte changed is caught — by the canonical-form check or by the signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from datalease.consent.chain import ConsentEvent, canonical_time
from datalease.policy.model import Policy, PolicyVersion
from datalease.policy.vocabulary import (
    CATEGORY_KEY_PREFIX,
    PARTNER_BLOCK_PREFIX,
    PURPOSE_KEY_PREFIX,
    SIGNAL_PREFIX,
    revokes,
)

SCHEMA: Final = "datalease.consent-receipt/1 (ISO/IEC TS 27560)"
ALGORITHM: Final = "Ed25519"


class ReceiptError(ValueError):
    """A receipt that is malformed, not canonical, or whose signature does not verify."""


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ReceiptError(f"public key: expected an Ed25519 public key in PEM ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ReceiptError("public key: expected an Ed25519 public key in PEM")
    return key


def notice_shown(policy: Policy | None, at: datetime) -> PolicyVersion | None:
    """The version whose notice was the latest published when the choice was made (else the one in force)."""
    if policy is None:
        return None
    published = [v for v in policy.versions if v.notice is not None and v.notice.published <= at]
    return published[-1] if published else policy.version_at(at)


def notice_label(policy: Policy | None, at: datetime) -> str | None:
    """`2024-11 (de, en)`: the notice a choice made at `at` followed, or None."""
    shown = notice_shown(policy, at)
    if shown is None or shown.notice is None:
        return None
    return f"{shown.version_id} ({', '.join(t.locale for t in shown.notice.texts)})"


def scope_of_setting(policy: Policy | None, key: str) -> tuple[list[str], list[str]]:
    """(purposes, categories) a setting is about."""
    purposes = list(policy.purposes) if policy else []
    categories = list(policy.categories) if policy else []
    if key.startswith(PURPOSE_KEY_PREFIX):
        return [key.removeprefix(PURPOSE_KEY_PREFIX)], categories
    if key.startswith(CATEGORY_KEY_PREFIX):
        return purposes, [key.removeprefix(CATEGORY_KEY_PREFIX)]
    if key.startswith(SIGNAL_PREFIX) and policy is not None:
        named = {
            p for meaning in policy.signals.get(key.removeprefix(SIGNAL_PREFIX), {}).values() for p in meaning
        }
        return sorted(named), categories
    return purposes, categories


def receipt_body(event: ConsentEvent, policy: Policy | None, controller: str) -> dict[str, Any]:
    purposes, categories = scope_of_setting(policy, event.key)
    recorded = (
        next((v for v in policy.versions if v.notice and v.notice.sha256 == event.notice_sha256), None)
        if policy is not None and event.notice_sha256 is not None
        else None
    )
    shown = recorded or (None if event.notice_sha256 is not None else notice_shown(policy, event.at))
    notice = shown.notice if shown else None
    return {
        "schema": SCHEMA,
        "record_id": event.event_id,
        "subject": {"id": f"user:{event.user_id}"},
        "controller": {"name": controller},
        "purposes": purposes,
        "categories": categories,
        "notice": {
            "policy_version": shown.version_id if shown else None,
            "sha256": event.notice_sha256 or (notice.sha256 if notice else None),
            # the locale displayed when it was recorded with the choice; else the notice's locales
            "locales": [event.notice_locale]
            if event.notice_locale
            else ([t.locale for t in notice.texts] if notice else []),
            "locale": event.notice_locale,
            "recorded": event.notice_sha256 is not None,
        },
        "surface": event.surface,
        "time": canonical_time(event.recorded_at),
        "effective_at": canonical_time(event.at),
        "method": event.source,
        "actor": event.actor,
        "state": "withdrawn" if revokes(event.key, event.value) else "given",
        "setting": {"key": event.key, "value": event.value},
        "partner": event.key.removeprefix(PARTNER_BLOCK_PREFIX)
        if event.key.startswith(PARTNER_BLOCK_PREFIX)
        else None,
        "chain": {"seq": event.seq, "hash": event.hash, "prev_hash": event.prev_hash},
    }


def sign(body: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """The receipt file: canonical JSON of the body with its signature, then a newline."""
    signature = private_key.sign(canonical_json(body))
    document = {
        **body,
        "signature": {
            "alg": ALGORITHM,
            "key_id": key_id(private_key.public_key()),
            "value": base64.b64encode(signature).decode("ascii"),
        },
    }
    return canonical_json(document) + b"\n"


@dataclass(frozen=True)
class VerifiedReceipt:
    body: dict[str, Any]
    key_id: str

    @property
    def seq(self) -> int:
        return int(self.body["chain"]["seq"])

    @property
    def hash(self) -> str:
        return str(self.body["chain"]["hash"])


def verify(data: bytes, public_key: Ed25519PublicKey) -> VerifiedReceipt:
    """Check a receipt file byte for byte: canonical form, then the Ed25519 signature."""
    try:
        document = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReceiptError(f"receipt: expected canonical JSON, could not parse it ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("signature"), dict):
        raise ReceiptError("receipt.signature: expected an object with alg, key_id and value")
    if canonical_json(document) + b"\n" != data:
        raise ReceiptError(
            "receipt: not in canonical form (sorted keys, no whitespace, one final newline); it was changed"
        )
    signature = document.pop("signature")
    if signature.get("alg") != ALGORITHM or signature.get("key_id") != key_id(public_key):
        raise ReceiptError(
            f"receipt.signature: expected alg {ALGORITHM} and key_id {key_id(public_key)}, "
            f"got {signature.get('alg')!r} and {signature.get('key_id')!r}"
        )
    try:
        raw = base64.b64decode(str(signature.get("value")), validate=True)
        public_key.verify(raw, canonical_json(document))
    except (InvalidSignature, ValueError) as exc:
        raise ReceiptError(
            "receipt.signature: the signature does not verify; the receipt was changed"
        ) from exc
    if not isinstance(document.get("chain"), dict) or not isinstance(document["chain"].get("seq"), int):
        raise ReceiptError("receipt.chain.seq: expected the event's sequence number")
    return VerifiedReceipt(document, signature["key_id"])


def against_event(receipt: VerifiedReceipt, event: ConsentEvent | None) -> None:
    """The ledger's side: the event the receipt names exists with the same content and hash."""
    if event is None:
        raise ReceiptError(f"receipt.chain.seq: the ledger has no event #{receipt.seq}")
    mismatches = [
        name
        for name, ours, theirs in (
            ("chain.hash", event.hash, receipt.hash),
            ("record_id", event.event_id, receipt.body.get("record_id")),
            ("subject.id", f"user:{event.user_id}", receipt.body.get("subject", {}).get("id")),
            ("setting.key", event.key, receipt.body.get("setting", {}).get("key")),
            ("setting.value", event.value, receipt.body.get("setting", {}).get("value")),
        )
        if ours != theirs
    ]
    if event.notice_sha256 is not None:  # what was shown is recorded with the event: it must agree
        notice = receipt.body.get("notice", {})
        mismatches += [
            name
            for name, ours, theirs in (
                ("notice.sha256", event.notice_sha256, notice.get("sha256")),
                ("notice.locale", event.notice_locale, notice.get("locale")),
            )
            if ours != theirs
        ]
    if mismatches:
        raise ReceiptError(
            f"receipt: differs from ledger event #{receipt.seq} in {', '.join(mismatches)} "
            f"(the ledger's hash is {event.hash})"
        )
