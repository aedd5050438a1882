"""The consent ledger: append-only setting events on a hash chain, as-of state, and the snapshot
that bulk engines join (user_id → effective explicit choices at time T)."""

from __future__ import annotations

from datalease.consent.chain import GENESIS_HASH, ConsentEvent, canonical_encoding, event_hash
from datalease.consent.integrity import ConsentStateError
from datalease.consent.ledger import (
    SOURCES,
    BulkResult,
    ConsentError,
    ConsentLedger,
    NewConsentEvent,
    SettingState,
    VerifyResult,
)
from datalease.consent.snapshot import ConsentSnapshot, consent_snapshot

__all__ = [
    "GENESIS_HASH",
    "SOURCES",
    "BulkResult",
    "ConsentError",
    "ConsentEvent",
    "ConsentLedger",
    "ConsentSnapshot",
    "ConsentStateError",
    "NewConsentEvent",
    "SettingState",
    "VerifyResult",
    "canonical_encoding",
    "consent_snapshot",
    "event_hash",
]
