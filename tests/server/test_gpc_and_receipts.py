"""The settings pages with Global Privacy Control, the receipts they offer, and the card as an anchor
(issue 15), in-process on a private copy of the small home.

Proves: `Sec-GPC: 1` on the settings page records `signal.gpc = true` once (actor `signal:gpc`) and the
page says why a setting is off; any other value is a 400 naming the header with nothing recorded; an
explicit choice after the signal is a confirmed override that `decide` honours; each chosen setting
says "You chose this on … after notice …" and links its receipt, which verifies offline against the
published key through the real console script, while a tampered copy is refused; the release's
dataset card carries the chain head and `consent verify --anchor` accepts it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cli_harness import expect, run
from fastapi.testclient import TestClient
from pages import csrf_of, is_error_page
from small_home import AGREEMENT, SmallHome, settings

from datalease.services.decisions import decide_record
from datalease.web.sessions import user_token
from datalease.workspace import Workspace

GPC = {"Sec-GPC": "1"}


def us_adult(ws: Workspace) -> int:
    today = datetime.now(UTC).date()
    return next(
        int(u["user_id"])
        for u in ws.lake.read("users").to_pylist()
        if u["country"] == "US"
        and u["account_state"] == "active"
        and u["birth_date"] is not None
        and u["birth_date"] < date(today.year - 20, 1, 1)
    )


def signed_in(client: TestClient, ws: Workspace, user_id: int) -> None:
    answer = client.get("/login", params={"token": user_token(ws.master_key, user_id)})
    assert answer.status_code == 303, answer.text


def events(ws: Workspace, user_id: int, key: str) -> list[tuple[bool, str]]:
    return [(e.value, e.actor) for e in ws.ledger.history(user_id) if e.key == key]


def test_gpc_is_recorded_once_explained_and_overridable(
    app_client: Callable[..., TestClient], home: SmallHome, tmp_path: Path
) -> None:
    ws = Workspace(settings(home.home))
    user = us_adult(ws)
    client = app_client()
    signed_in(client, ws, user)
    page = client.get(f"/users/{user}/settings", headers=GPC)
    assert page.status_code == 200, page.text
    assert (
        "Your browser sent Global Privacy Control, so this is off: third party sharing, train ai system"
        in page.text
    )
    assert "Off: your browser sent Global Privacy Control." in page.text
    assert "Allow third party sharing despite Global Privacy Control" in page.text
    assert client.get(f"/users/{user}/settings", headers=GPC).status_code == 200
    assert events(ws, user, "signal.gpc") == [(True, "signal:gpc")]
    refused = decide_record(ws, str(user), "posts", ("train_ai_system",)).decision
    assert "signal_opt_out" in refused.reasons

    # An explicit choice after the signal: a confirmed override.
    saved = client.post(
        f"/users/{user}/settings",
        headers=GPC,
        data={
            "csrf": csrf_of(page),
            "share_with_partners": "on",
            "purpose.train_ai_system.generative": "on",
            **{f"share.{c}": "on" for c in ("posts", "likes", "reposts", "profile")},
        },
    )
    assert saved.status_code == 303, saved.text
    assert events(ws, user, "purpose.train_ai_system.generative") == [(True, f"user:{user}")]
    allowed = decide_record(ws, str(user), "posts", ("train_ai_system.generative",)).decision
    assert "signal_opt_out" not in allowed.reasons, allowed
    after = client.get(f"/users/{user}/settings")
    seq = ws.ledger.history(user)[-1].seq
    assert f"/users/{user}/receipts/{seq}.json" in after.text
    # recorded with the choice: the notice in force, in its first locale (no Accept-Language; de < en)
    assert "You chose this on" in after.text and "after notice 2024-11 (de)." in after.text

    # The receipt, downloaded from the page, verifies offline against the published key.
    receipt = client.get(f"/users/{user}/receipts/{seq}.json")
    assert receipt.status_code == 200 and receipt.headers["content-disposition"].startswith("attachment")
    key = client.get("/consent/receipt-key.pem")
    (tmp_path / "r.json").write_bytes(receipt.content)
    (tmp_path / "key.pem").write_bytes(key.content)
    ok = expect(
        run(
            "consent",
            "verify-receipt",
            "r.json",
            "--offline",
            "--public-key",
            "key.pem",
            home=None,
            cwd=tmp_path,
        ),
        0,
    )
    assert ok.out_lines[0].startswith(
        f"receipt valid: event #{seq} of user:{user}, purpose.train_ai_system.generative=true"
    )
    tampered = receipt.content.replace(b'"value":true', b'"value":false', 1)
    (tmp_path / "t.json").write_bytes(tampered)
    bad = expect(
        run(
            "consent",
            "verify-receipt",
            "t.json",
            "--offline",
            "--public-key",
            "key.pem",
            home=None,
            cwd=tmp_path,
        ),
        2,
    )
    assert "receipt.signature: the signature does not verify" in bad.err
    assert client.get(f"/users/{user}/receipts/{seq + 100}.json").status_code == 404


def test_another_gpc_value_is_refused_naming_the_header(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    ws = Workspace(settings(home.home))
    client = app_client()
    signed_in(client, ws, home.user_id)
    for value in ("0", "true", "1, 1"):
        answer = client.get(f"/users/{home.user_id}/settings", headers={"Sec-GPC": value})
        is_error_page(answer, 400)
        assert "Sec-GPC: expected the value 1" in answer.text
    assert events(ws, home.user_id, "signal.gpc") == []


def test_the_card_carries_the_chain_head_and_anchors_the_ledger(home: SmallHome) -> None:
    card = home.home / "shares" / AGREEMENT / "README.md"
    text = card.read_text(encoding="utf-8")
    assert "consent_ledger_head:" in text
    expect(run("consent", "verify", "--anchor", str(card), home=home.home), 0)
    head = expect(run("consent", "head", home=home.home), 0).json()
    assert set(head["consent_ledger_head"]) == {"seq", "hash"}


# --- issue 15: each choice records the notice shown, the locale and the surface ----------------------


def x_notice_sha256(ws: Workspace) -> str:
    version = next(v for v in ws.require_policy().versions if v.version_id == "2024-11")
    assert version.notice is not None
    return version.notice.sha256


@pytest.mark.parametrize(
    ("accept_language", "locale"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", "de"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7", "en"),
        ("en;q=0.2, de;q=0.3", "de"),
        ("fr", "de"),  # none of the notice's locales: its first (locales are in alphabetical order)
        (None, "de"),
        ("EN-us", "en"),
    ],
)
def test_the_page_records_the_notice_and_locale_shown(
    app_client: Callable[..., TestClient], home: SmallHome, accept_language: str | None, locale: str
) -> None:
    ws = Workspace(settings(home.home))
    user = us_adult(ws)
    client = app_client()
    signed_in(client, ws, user)
    headers = {"Accept-Language": accept_language} if accept_language else {}
    page = client.get(f"/users/{user}/settings", headers=headers)
    saved = client.post(
        f"/users/{user}/settings",
        headers=headers,
        data={"csrf": csrf_of(page), "share_with_partners": "on", "share.posts": "on"},
    )
    assert saved.status_code == 303, saved.text
    latest = ws.ledger.history(user)[-1]
    assert (latest.surface, latest.notice_sha256, latest.notice_locale, latest.source) == (
        "settings_page",
        x_notice_sha256(ws),
        locale,
        "user",
    )
    after = client.get(f"/users/{user}/settings")
    assert f"after notice 2024-11 ({locale})." in after.text
    body = json.loads(client.get(f"/users/{user}/receipts/{latest.seq}.json").content)
    assert body["notice"] == {
        "policy_version": "2024-11",
        "sha256": x_notice_sha256(ws),
        "locale": locale,
        "locales": [locale],
        "recorded": True,
    }
    assert body["surface"] == "settings_page"
    assert ws.ledger.verify().ok


def test_gpc_is_recorded_with_source_and_surface_signal(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    ws = Workspace(settings(home.home))
    user = us_adult(ws)
    client = app_client()
    signed_in(client, ws, user)
    assert client.get(f"/users/{user}/settings", headers=GPC).status_code == 200
    (signal,) = [e for e in ws.ledger.history(user) if e.key == "signal.gpc"]
    assert (signal.source, signal.surface, signal.actor, signal.notice_sha256) == (
        "signal",
        "signal",
        "signal:gpc",
        None,
    )
    body = json.loads(client.get(f"/users/{user}/receipts/{signal.seq}.json").content)
    assert (body["method"], body["surface"]) == ("signal", "signal")
    assert ws.ledger.verify().ok
