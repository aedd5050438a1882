"""Consent receipts for the CLI, the pages and the API: sign one, publish the key, verify a file.

The signing key is Ed25519: DATALEASE_RECEIPT_KEY (PEM, PKCS#8) or `<home>/keys/receipts.ed25519`,
created once with mode 0600. The API (issue 16) calls `receipt(ws, user_id, seq)` and `public_key(ws)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datalease.consent.chain import ConsentEvent
from datalease.consent.receipts import (
    ReceiptError,
    VerifiedReceipt,
    against_event,
    load_public_key,
    public_key_pem,
    receipt_body,
    sign,
    verify,
)
from datalease.errors import UserError
from datalease.workspace import Workspace

KEY_FILE = "receipts.ed25519"


def _parse_private(pem: bytes, origin: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{origin}: expected an unencrypted Ed25519 private key in PEM (PKCS#8)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{origin}: expected an Ed25519 private key, got another kind of key")
    return key


def signing_key(ws: Workspace) -> Ed25519PrivateKey:
    """The platform's receipt key: from the setting, else the key file (created on first use)."""
    if ws.settings.receipt_key:
        return _parse_private(ws.settings.receipt_key.encode(), "DATALEASE_RECEIPT_KEY")
    path: Path = ws.settings.resolved_home / "keys" / KEY_FILE
    if path.exists():
        return _parse_private(path.read_bytes(), str(path))
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def public_key(ws: Workspace) -> bytes:
    """The published public key (PEM) that verifies every receipt of this platform."""
    return public_key_pem(signing_key(ws))


def event_of(ws: Workspace, user_id: int, seq: int) -> ConsentEvent | None:
    return next((e for e in ws.ledger.history(user_id) if e.seq == seq), None)


def receipt(ws: Workspace, user_id: int, seq: int) -> bytes:
    """The signed receipt of the user's event #seq (UserError if it is not theirs or does not exist)."""
    event = event_of(ws, user_id, seq)
    if event is None:
        raise UserError(f"SEQ {seq}: user {user_id} has no consent event #{seq}")
    policy = ws.active_policy()
    controller = policy.name if policy else "datalease"
    return sign(receipt_body(event, policy, controller), signing_key(ws))


@dataclass(frozen=True)
class ReceiptCheck:
    receipt: VerifiedReceipt
    against_ledger: bool


def verify_receipt(data: bytes, *, public_key_pem_bytes: bytes | None, ws: Workspace | None) -> ReceiptCheck:
    """Offline: the signature against the given key. With a workspace: its key, and the ledger's event."""
    try:
        if public_key_pem_bytes is not None:
            key = load_public_key(public_key_pem_bytes)
        elif ws is not None:
            key = signing_key(ws).public_key()
        else:
            raise UserError("--public-key: required with --offline (the platform's published PEM)")
        checked = verify(data, key)
        if ws is None:
            return ReceiptCheck(checked, False)
        subject = str(checked.body.get("subject", {}).get("id", ""))
        user_id = int(subject.removeprefix("user:")) if subject.startswith("user:") else -1
        against_event(checked, event_of(ws, user_id, checked.seq))
        return ReceiptCheck(checked, True)
    except ReceiptError as exc:
        raise UserError(str(exc)) from exc
