"""The platform API (`/api/v1/platform`), in-process on the small home:

- settings read back with their source and the policy default; a write goes through the ledger
  (chain intact, revocation intent queued for a withdrawing change), all or none, idempotent by key
  (a retry records nothing twice, other content under the same key is a 409);
- decide and decide/batch answer exactly what `datalease decide` answers (services.decisions);
- the access export holds exactly the rows the partner's release holds for the person (by their key),
  in JSON and CSV; the report agrees;
- scoped tokens: a 403 naming the missing scope, a revoked token is a 401;
- every refusal is `{error, field, message}` and records nothing.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from small_home import SmallHome

from datalease.reporting.user_report import user_report
from datalease.services.decisions import decide_record
from datalease.services.scoped_tokens import create_token, revoke_token
from datalease.store.revocation import count_pending_intents
from datalease.workspace import Workspace

BASE = "/api/v1/platform"
GENERATIVE = "train_ai_system.generative"


def _ws(client: TestClient) -> Workspace:
    ws: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    return ws


def _problem(answer: Any, status: int, field: str | None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "field", "message"}, body
    assert body["field"] == field, body
    return body


def test_settings_read_write_and_sources(client: TestClient, home: SmallHome) -> None:
    before = client.get(f"{BASE}/users/{home.user_id}/settings").json()
    master = next(s for s in before["settings"] if s["key"] == "share_with_partners")
    assert master["source"] in ("policy_default", "user", "platform", "import")
    keys = {s["key"] for s in before["settings"]}
    assert {"share_with_partners", "share.posts", f"purpose.{GENERATIVE}", "block_partner.lumen-labs"} <= keys
    pending = _pending(client)
    answer = client.post(
        f"{BASE}/settings",
        json={"changes": [{"user_id": home.user_id, "key": "share_with_partners", "value": False}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"] == 1
    after = client.get(f"{BASE}/users/{home.user_id}/settings").json()
    master = next(s for s in after["settings"] if s["key"] == "share_with_partners")
    assert master["value"] is False and master["explicit"] is True and master["source"] == "user"
    assert master["policy_default"] is True
    assert _pending(client) > pending  # the withdrawal was queued in the same transaction
    assert _ws(client).ledger.verify().ok


def _pending(client: TestClient) -> int:
    with _ws(client).session() as session:
        return count_pending_intents(session)


def test_a_bad_change_refuses_the_whole_batch(client: TestClient, home: SmallHome) -> None:
    count = _ws(client).ledger.count()
    changes = [
        {"user_id": home.user_id, "key": "share.posts", "value": False},
        {"user_id": home.user_id, "key": "share.tweets", "value": False},
    ]
    body = _problem(client.post(f"{BASE}/settings", json={"changes": changes}), 400, "changes[1].key")
    assert "share.tweets" in body["message"]
    unknown = [{"user_id": 999_999_999, "key": "share.posts", "value": False}]
    _problem(client.post(f"{BASE}/settings", json={"changes": unknown}), 400, "changes[0].user_id")
    wrong_value = [{"user_id": home.user_id, "key": "share.posts", "value": "maybe"}]
    _problem(client.post(f"{BASE}/settings", json={"changes": wrong_value}), 400, "changes[0].value")
    many = [{"user_id": home.user_id, "key": "share.posts", "value": i % 2 == 0} for i in range(10_001)]
    _problem(client.post(f"{BASE}/settings", json={"changes": many}), 400, "changes")
    assert _ws(client).ledger.count() == count


def test_idempotency_key(client: TestClient, home: SmallHome) -> None:
    ws = _ws(client)
    count = ws.ledger.count()
    body = {"changes": [{"user_id": home.user_id, "key": "share.likes", "value": False}]}
    first = client.post(f"{BASE}/settings", json=body, headers={"Idempotency-Key": "app-42"})
    again = client.post(f"{BASE}/settings", json=body, headers={"Idempotency-Key": "app-42"})
    assert first.status_code == again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["last_seq"] == first.json()["last_seq"]
    assert ws.ledger.count() == count + 1
    other = {"changes": [{"user_id": home.user_id, "key": "share.likes", "value": True}]}
    answer = client.post(f"{BASE}/settings", json=other, headers={"Idempotency-Key": "app-42"})
    _problem(answer, 409, "Idempotency-Key")
    assert ws.ledger.count() == count + 1


def test_decide_answers_what_the_cli_answers(client: TestClient, home: SmallHome) -> None:
    ws = _ws(client)
    at = datetime(2026, 5, 3, tzinfo=UTC)
    every = ws.lake.read("users").column("user_id").to_pylist()
    allowed = [u for u in every if decide_record(ws, str(u), "posts", (GENERATIVE,), at=at).decision.allowed]
    users = [allowed[0], *(u for u in every if u != allowed[0])][:10]
    # explicit settings before and after the instant asked: only the earlier ones count
    ws.ledger.record(users[0], "share_with_partners", False, at=datetime(2026, 5, 2, tzinfo=UTC))
    ws.ledger.record(users[1], "share.likes", False, at=datetime(2026, 5, 2, tzinfo=UTC))
    ws.ledger.record(users[1], "share.likes", True, at=datetime(2026, 5, 2, 12, tzinfo=UTC))
    ws.ledger.record(users[2], "share_with_partners", False, at=datetime(2026, 5, 4, tzinfo=UTC))
    records = [
        {"user_id": u, "category": c, "purposes": [GENERATIVE], "at": "2026-05-03T00:00:00Z"}
        for u in users
        for c in ("posts", "likes", "profile")
    ]
    batch = client.post(f"{BASE}/decide/batch", json={"records": records})
    assert batch.status_code == 200, batch.text
    answers = batch.json()["decisions"]
    assert len(answers) == len(records)
    assert not answers[0]["allowed"] and "opted_out" in answers[0]["reasons"]
    for record, answer in zip(records, answers, strict=True):
        expected = decide_record(ws, str(record["user_id"]), record["category"], (GENERATIVE,), at=at)
        assert answer["allowed"] == expected.decision.allowed
        assert answer["reasons"] == list(expected.decision.reasons)
        single = client.post(f"{BASE}/decide", json=record).json()
        assert single == answer
    _problem(
        client.post(
            f"{BASE}/decide", json={"user_id": 999_999_999, "category": "posts", "purposes": [GENERATIVE]}
        ),
        404,
        "user_id",
    )
    bad = [*records[:2], {"user_id": users[0], "category": "tweets", "purposes": [GENERATIVE]}]
    _problem(client.post(f"{BASE}/decide/batch", json={"records": bad}), 400, "records[2].category")


def _user_with_rows(ws: Workspace) -> tuple[int, int, str]:
    for user in ws.lake.read("users").column("user_id").to_pylist():
        report = user_report(ws, user)
        shared = sum(report[0].rows_shared.values()) if report else 0
        if shared:
            return user, shared, report[0].user_key
    raise AssertionError("no user of the small home has released rows")


def test_the_access_export_holds_the_rows_released(client: TestClient) -> None:
    user, shared, key = _user_with_rows(_ws(client))
    answer = client.get(f"{BASE}/users/{user}/export?format=json")
    assert answer.status_code == 200, answer.text
    body = json.loads(answer.text)
    assert body["user_id"] == user and body["unavailable"] == []
    assert len(body["rows"]) == shared  # the small home has one release
    assert {r["row"]["user_key"] for r in body["rows"]} == {key}
    assert {r["partner"] for r in body["rows"]} == {"lumen-labs"}
    csv_answer = client.get(f"{BASE}/users/{user}/export?format=csv")
    assert csv_answer.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(csv_answer.text)))
    assert len(lines) == shared
    assert all(json.loads(line["row"])["user_key"] == key for line in lines)
    report = client.get(f"{BASE}/users/{user}/report").json()
    assert sum(report["agreements"][0]["rows_shared"].values()) == shared
    _problem(client.get(f"{BASE}/users/999999999/export"), 404, "user_id")


def test_scopes(client: TestClient, home: SmallHome) -> None:
    ws = _ws(client)
    reader = create_token(ws, "app reader", ("platform:read",))
    headers = {"Authorization": f"Bearer {reader.token}"}
    assert client.get(f"{BASE}/users/{home.user_id}/settings", headers=headers).status_code == 200
    body = {"changes": [{"user_id": home.user_id, "key": "share.posts", "value": False}]}
    refused = _problem(client.post(f"{BASE}/settings", json=body, headers=headers), 403, "Authorization")
    assert "platform:write" in refused["message"]
    events = client.post(f"{BASE}/events", json={"type": "user_delete", "user_id": 1}, headers=headers)
    assert events.status_code == 403 and "platform:write" in events.json()["message"]
    writer = create_token(ws, "app writer", ("platform:write",))
    wrote = client.post(f"{BASE}/settings", json=body, headers={"Authorization": f"Bearer {writer.token}"})
    assert wrote.status_code == 200, wrote.text
    revoke_token(ws, reader.record.token_id)
    _problem(client.get(f"{BASE}/users/{home.user_id}/settings", headers=headers), 401, "Authorization")
    forged = {"Authorization": f"Bearer {reader.token[:-2]}xx"}
    _problem(client.get(f"{BASE}/users/{home.user_id}/settings", headers=forged), 401, "Authorization")
    _problem(
        client.get(f"{BASE}/users/{home.user_id}/settings", headers={"Authorization": ""}),
        401,
        "Authorization",
    )


def test_a_per_post_choice_only_by_its_author(client: TestClient, home: SmallHome) -> None:
    """`post.<id>.ai_training` through the API: recorded for the author's own post; on another
    person's post refused naming `changes[i].key`, and nothing of the batch is recorded."""
    ws = _ws(client)
    posts = ws.lake.read("posts").select(["post_id", "author_id"]).to_pylist()
    own = next(p["post_id"] for p in posts if p["author_id"] == home.user_id)
    other = next(p for p in posts if p["author_id"] != home.user_id)
    seq_before = ws.ledger.head()[0]
    refused = client.post(
        f"{BASE}/settings",
        json={
            "changes": [
                {"user_id": home.user_id, "key": f"post.{own}.ai_training", "value": False},
                {"user_id": home.user_id, "key": f"post.{other['post_id']}.ai_training", "value": False},
            ]
        },
    )
    body = _problem(refused, 400, "changes[1].key")
    assert "only its author" in body["message"], body
    assert ws.ledger.head()[0] == seq_before  # all or none
    mine = client.post(
        f"{BASE}/settings",
        json={"changes": [{"user_id": home.user_id, "key": f"post.{own}.ai_training", "value": False}]},
    )
    assert mine.status_code == 200 and mine.json()["recorded"] == 1, mine.text
    listed = client.get(f"{BASE}/users/{home.user_id}/settings").json()["settings"]
    assert any(s["key"] == f"post.{own}.ai_training" and s["value"] is False for s in listed), listed


def test_sec_gpc_on_a_settings_write_is_recorded_as_the_signal(client: TestClient, home: SmallHome) -> None:
    """`Sec-GPC: 1` on a settings write records `signal.gpc = true` for the person (actor
    `signal:gpc`) before the body's changes; any other value is a 400 naming the header, nothing recorded."""
    ws = _ws(client)
    change = {"changes": [{"user_id": home.user_id, "key": "share.likes", "value": True}]}
    seq_before = ws.ledger.head()[0]
    _problem(client.post(f"{BASE}/settings", json=change, headers={"Sec-GPC": "2"}), 400, "Sec-GPC")
    assert ws.ledger.head()[0] == seq_before
    answer = client.post(f"{BASE}/settings", json=change, headers={"Sec-GPC": "1"})
    assert answer.status_code == 200, answer.text
    state = ws.ledger.state_at(home.user_id)
    assert state["signal.gpc"].value is True and state["signal.gpc"].actor == "signal:gpc"
    assert (state["signal.gpc"].source, state["signal.gpc"].surface) == ("signal", "signal")
    assert state["share.likes"].value is True


# --- issue 15: the API records surface `api` and the notice a change names ---------------------------


def _x_notice(ws: Workspace) -> str:
    version = next(v for v in ws.require_policy().versions if v.version_id == "2024-11")
    assert version.notice is not None
    return version.notice.sha256


def test_a_write_records_surface_api_and_the_notice_named(client: TestClient, home: SmallHome) -> None:
    ws = _ws(client)
    sha = _x_notice(ws)
    user = home.user_id
    answer = client.post(
        f"{BASE}/settings",
        json={
            "changes": [
                {"user_id": user, "key": "share.likes", "value": False, "notice_sha256": sha, "locale": "de"},
                {"user_id": user, "key": "share.reposts", "value": False},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    likes, reposts = ws.ledger.history(user)[-2:]
    assert (likes.surface, likes.notice_sha256, likes.notice_locale) == ("api", sha, "de")
    assert (reposts.surface, reposts.notice_sha256, reposts.notice_locale) == ("api", None, None)
    assert ws.ledger.verify().ok


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (
            {"notice_sha256": "ab" * 32, "locale": "en"},
            "changes[1].notice_sha256",
            "is not the sha256 of any notice",
        ),
        ({"notice_sha256": "NOTICE", "locale": "fr"}, "changes[1].locale", "has no text in that locale"),
        ({"locale": "en"}, "changes[1].notice_sha256", "a locale without a notice"),
        ({"notice_sha256": "NOTICE"}, "changes[1].locale", "several locales"),
    ],
)
def test_an_unknown_notice_or_locale_is_refused_and_nothing_recorded(
    client: TestClient, home: SmallHome, change: dict[str, str], field: str, says: str
) -> None:
    ws = _ws(client)
    claimed = {k: (_x_notice(ws) if v == "NOTICE" else v) for k, v in change.items()}
    seq_before = ws.ledger.head()[0]
    answer = client.post(
        f"{BASE}/settings",
        json={
            "changes": [
                {"user_id": home.user_id, "key": "share.posts", "value": False},
                {"user_id": home.user_id, "key": "share.likes", "value": False, **claimed},
            ]
        },
        headers={"Sec-GPC": "1"},
    )
    body = _problem(answer, 400, field)
    assert says in body["message"], body
    assert ws.ledger.head()[0] == seq_before  # not even the signal
