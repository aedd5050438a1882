"""Consent receipts (issue 15): each recorded change yields a receipt with the ISO/IEC TS 27560 fields,
signed with the platform's Ed25519 key; it verifies offline against the published public key and
against the ledger; a receipt with ANY byte changed is refused (property over every position and
every replacement byte); a receipt signed by another key, or naming an event the ledger does not hold
in that form, is refused too.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datalease.config import Settings
from datalease.consent.receipts import sign
from datalease.errors import UserError
from datalease.services.notices import choices_by_notice
from datalease.services.receipts import public_key, receipt, signing_key, verify_receipt
from datalease.store.policy_revisions import save_policy_revision
from datalease.workspace import Workspace

POLICY = files("datalease.examples").joinpath("x-2024.yaml").read_text(encoding="utf-8")
CHOSEN = datetime(2024, 11, 2, 10, 0, tzinfo=UTC)


def workspace(home: Path, **extra: object) -> Workspace:
    return Workspace(Settings(home=home, database_url=None, master_key=None, workers=1, **extra))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, bytes, bytes]:
    ws = workspace(tmp_path_factory.mktemp("receipts") / "home")
    with ws.session() as session, session.begin():
        save_policy_revision(
            session, "x-platform", POLICY, hashlib.sha256(POLICY.encode()).hexdigest(), "tests"
        )
    ws.ledger.record(7, "share.posts", True, at=datetime(2024, 10, 1, tzinfo=UTC))
    event = ws.ledger.record(7, "purpose.third_party_sharing", False, at=CHOSEN)
    return ws, receipt(ws, 7, event.seq), public_key(ws)


def test_the_receipt_carries_the_27560_fields(signed: tuple[Workspace, bytes, bytes]) -> None:
    ws, data, _key = signed
    body = json.loads(data)
    assert body["subject"] == {"id": "user:7"}
    assert body["controller"] == {"name": "x-platform"}
    assert body["purposes"] == ["third_party_sharing"]
    assert body["categories"] == ["posts", "likes", "reposts", "bookmarks", "profile"]
    policy = ws.require_policy()
    notice = policy.versions[1].notice
    assert notice is not None
    # Chosen on 2 Nov 2024: after the notice of 2024-11 (published 16 Oct), before it took effect.
    assert body["notice"] == {  # no notice recorded with the event: inferred from its time
        "policy_version": "2024-11",
        "sha256": notice.sha256,
        "locales": ["de", "en"],
        "locale": None,
        "recorded": False,
    }
    assert body["surface"] is None
    assert body["effective_at"] == "2024-11-02T10:00:00.000000Z"
    assert (body["method"], body["state"]) == ("user", "withdrawn")
    assert body["setting"] == {"key": "purpose.third_party_sharing", "value": False}
    assert body["chain"]["seq"] == 2
    assert body["signature"]["alg"] == "Ed25519"


def test_it_verifies_offline_and_against_the_ledger(signed: tuple[Workspace, bytes, bytes]) -> None:
    ws, data, key = signed
    offline = verify_receipt(data, public_key_pem_bytes=key, ws=None)
    assert (offline.receipt.seq, offline.against_ledger) == (2, False)
    assert verify_receipt(data, public_key_pem_bytes=None, ws=ws).against_ledger


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_byte_changed_is_refused(signed: tuple[Workspace, bytes, bytes], data: st.DataObject) -> None:
    _ws, original, key = signed
    position = data.draw(st.integers(0, len(original) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != original[position]))
    tampered = original[:position] + bytes([byte]) + original[position + 1 :]
    with pytest.raises(UserError, match=r"^receipt"):
        verify_receipt(tampered, public_key_pem_bytes=key, ws=None)


def test_a_receipt_of_another_key_or_another_event_is_refused(
    signed: tuple[Workspace, bytes, bytes], tmp_path: Path
) -> None:
    ws, data, _key = signed
    other = workspace(tmp_path / "other")
    with pytest.raises(UserError, match=r"receipt\.signature: expected alg Ed25519 and key_id"):
        verify_receipt(data, public_key_pem_bytes=public_key(other), ws=None)
    other.ledger.record(7, "share.posts", False, at=CHOSEN)
    other.ledger.record(7, "share.posts", True, at=CHOSEN)
    forged = receipt(other, 7, 2)  # a valid signature of the other platform over its own event #2
    with pytest.raises(UserError, match=r"differs from ledger event #2 in chain\.hash"):
        verify_receipt(forged, public_key_pem_bytes=None, ws=_with_key(ws, other))
    with pytest.raises(UserError, match="user 7 has no consent event #9"):
        receipt(ws, 7, 9)
    with pytest.raises(UserError, match="user 8 has no consent event #2"):
        receipt(ws, 8, 2)


def _with_key(ws: Workspace, signer: Workspace) -> Workspace:
    """`ws`'s ledger, trusting `signer`'s receipt key (as if the key had been stolen)."""
    key = (signer.settings.resolved_home / "keys" / "receipts.ed25519").read_text()
    return Workspace(ws.settings.model_copy(update={"receipt_key": key}))


def test_a_receipt_key_setting_must_be_an_ed25519_pem(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="DATALEASE_RECEIPT_KEY: expected an unencrypted Ed25519 private key"):
        public_key(workspace(tmp_path / "h", receipt_key="not a key"))
    key_file = tmp_path / "h2" / "keys" / "receipts.ed25519"
    public_key(workspace(tmp_path / "h2"))
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_choices_are_counted_by_the_notice_shown(signed: tuple[Workspace, bytes, bytes]) -> None:
    ws, _data, _key = signed
    counts = choices_by_notice(ws)
    before, after = counts
    assert (before.notice, before.choices, before.people, before.given, before.withdrawn) == (
        None,
        1,
        1,
        1,
        0,
    )
    assert (after.notice, after.choices, after.people, after.given, after.withdrawn) == (
        "2024-11",
        1,
        1,
        0,
        1,
    )
    assert after.sha256 == ws.require_policy().versions[1].notice.sha256  # type: ignore[union-attr]


def test_the_recorded_notice_and_locale_go_into_receipts_and_counts(tmp_path: Path) -> None:
    """Issue 15: a choice recorded with its notice and locale — here imported from 2019, before any
    notice by time — is receipted and counted by the notice recorded, not by the time."""
    ws = workspace(tmp_path / "home")
    with ws.session() as session, session.begin():
        save_policy_revision(
            session, "x-platform", POLICY, hashlib.sha256(POLICY.encode()).hexdigest(), "tests"
        )
    notice = ws.require_policy().versions[1].notice
    assert notice is not None
    old = datetime(2019, 3, 1, tzinfo=UTC)
    inferred = ws.ledger.record(7, "share.posts", True, at=old)
    shown = ws.ledger.record(
        7, "share.likes", False, at=old, notice_sha256=notice.sha256, notice_locale="en", surface="import"
    )
    body = json.loads(receipt(ws, 7, shown.seq))
    assert body["notice"] == {
        "policy_version": "2024-11",
        "sha256": notice.sha256,
        "locale": "en",
        "locales": ["en"],
        "recorded": True,
    }
    assert body["surface"] == "import"
    plain = json.loads(receipt(ws, 7, inferred.seq))
    assert plain["notice"]["recorded"] is False and plain["notice"]["locale"] is None
    assert plain["surface"] is None
    counts = {c.notice: (c.choices, c.withdrawn) for c in choices_by_notice(ws)}
    assert counts == {None: (1, 0), "2024-11": (1, 1)}
    assert verify_receipt(receipt(ws, 7, shown.seq), public_key_pem_bytes=None, ws=ws).against_ledger

    # Signed with the platform's own key but claiming another locale: the ledger's record disagrees.
    claimed = {key: value for key, value in body.items() if key != "signature"}
    claimed["notice"] = {**body["notice"], "locale": "de", "locales": ["de"]}
    with pytest.raises(UserError, match=r"differs from ledger event #2 in notice\.locale"):
        verify_receipt(sign(claimed, signing_key(ws)), public_key_pem_bytes=None, ws=ws)
