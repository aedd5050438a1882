"""A large `POST decide/batch` is answered by the compiled plan (`takes_the_plan`); its
answers are `decide()`'s, in the same order and shape as one `POST decide` per record, on the small
home with settings written through the API (master and category toggles, a blocked partner, a
per-post choice, GPC, settings after the instant asked). The refusals still name `records[i].field`
(unknown user, bad category, a post id on a non-post, over 10,000). Regulator orders in force apply
to API decisions as they do to `datalease decide`."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from datalease.policy.model import RegulatorOrder
from datalease.services.decision_context import context_of
from datalease.services.decisions import decide_record
from datalease.services.platform_decide import DecideRequest, decide_many, takes_the_plan
from datalease.store.orders import add_order
from datalease.workspace import Workspace

BASE = "/api/v1/platform"
GENERATIVE = "train_ai_system.generative"
INSTANTS = (None, "2026-05-03T00:00:00Z", "2026-05-02T06:00:00+02:00", "2030-01-01T00:00:00Z")


def _ws(client: TestClient) -> Workspace:
    ws: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    return ws


def _write(client: TestClient, changes: list[dict[str, Any]], **headers: str) -> None:
    answer = client.post(f"{BASE}/settings", json={"changes": changes}, headers=headers)
    assert answer.status_code == 200, answer.text


def _records(client: TestClient, count: int, *, mixed: bool = True) -> list[dict[str, Any]]:
    """`count` records over 12 people with settings; `mixed`: 5 categories × 2 purpose lists ×
    2 partners × 4 instants (80 plans), else the 5 categories for one partner at one instant."""
    ws = _ws(client)
    users = ws.lake.read("users").column("user_id").to_pylist()[:12]
    posts = ws.lake.read("posts").select(["post_id", "author_id"]).to_pylist()
    own = {p["author_id"]: p["post_id"] for p in posts if p["author_id"] in users}
    author = next(iter(own))
    _write(client, [{"user_id": users[1], "key": "share_with_partners", "value": False}])
    _write(
        client,
        [
            {"user_id": users[2], "key": "share.likes", "value": False, "at": "2026-05-02T00:00:00Z"},
            {"user_id": users[2], "key": "share.likes", "value": True, "at": "2026-05-04T00:00:00Z"},
            {"user_id": users[3], "key": "block_partner.lumen-labs", "value": True},
            {
                "user_id": author,
                "key": "block_partner.lumen-labs",
                "value": True,
                "at": "2026-05-02T12:00:00Z",
            },
            {"user_id": author, "key": f"post.{own[author]}.ai_training", "value": False},
        ],
    )
    _write(client, [{"user_id": users[4], "key": "share.posts", "value": True}], **{"Sec-GPC": "1"})
    policy = context_of(ws).snapshot().policy
    other = next(p for p in policy.purposes if p != GENERATIVE)
    rng = random.Random(16)
    records = []
    for _ in range(count):  # 5 categories x 2 purpose lists x 2 partners x 4 instants: 80 plans at most
        user = author if rng.random() < 0.2 else rng.choice(users)
        category = rng.choice(policy.categories)
        record: dict[str, Any] = {
            "user_id": user,
            "category": category,
            "purposes": rng.choice(([GENERATIVE], [GENERATIVE, other])) if mixed else [GENERATIVE],
        }
        if rng.random() < 0.5 or not mixed:
            record["partner"] = "lumen-labs"
        at = rng.choice(INSTANTS) if mixed else INSTANTS[-1]
        if at is not None:
            record["at"] = at
        if category == "posts" and user in own and rng.random() < 0.7:
            record["post_id"] = own[user]
        records.append(record)
    return records


def _requests(records: list[dict[str, Any]]) -> list[DecideRequest]:
    return [
        DecideRequest(
            r["user_id"],
            r["category"],
            tuple(r["purposes"]),
            r.get("partner"),
            datetime.fromisoformat(r["at"]) if "at" in r else None,
            r.get("post_id"),
        )
        for r in records
    ]


def test_mixed_batches_get_the_same_decisions_on_both_paths(client: TestClient) -> None:
    """Mixed users, categories, purposes, partners and instants, on the real store: the compiled
    plan's decisions (reasons, version, region, mechanisms) are `decide()`'s, record by record."""
    requests = _requests(_records(client, 4_000))
    compiled = decide_many(_ws(client), requests, compiled=True)
    one_by_one = decide_many(_ws(client), requests, compiled=False)
    assert len(compiled) == len(requests)
    for i, (got, expected) in enumerate(zip(compiled, one_by_one, strict=True)):
        assert got == expected, (i, requests[i])
    reasons = {code for d in compiled for code in d.reasons}
    assert {"opted_out", "partner_blocked", "post_opted_out"} <= reasons, reasons
    assert {d.allowed for d in compiled} == {True, False}


def test_a_large_batch_answers_what_decide_answers(client: TestClient) -> None:
    records = _records(client, 3_000, mixed=False)
    requests = _requests(records)
    assert takes_the_plan(requests)  # the API answers this batch with the compiled plan
    batch = client.post(f"{BASE}/decide/batch", json={"records": records})
    assert batch.status_code == 200, batch.text
    answers = batch.json()["decisions"]
    one_by_one = decide_many(_ws(client), requests, compiled=False)  # decide(), record by record
    assert len(answers) == len(records)
    for i, (answer, expected) in enumerate(zip(answers, one_by_one, strict=True)):
        assert answer == {
            "allowed": expected.allowed,
            "reasons": list(expected.reasons),
            "policy_version": expected.version_id,
            "region": expected.region,
        }, (i, records[i])
    # the batch's answers are varied (not all allowed, not all refused for one reason)
    assert {a["allowed"] for a in answers} == {True, False}
    reasons = {code for a in answers for code in a["reasons"]}
    assert {"opted_out", "partner_blocked", "post_opted_out"} <= reasons, reasons
    for i in range(0, len(records), 197):  # the same shape as one POST decide per record
        single = client.post(f"{BASE}/decide", json=records[i])
        assert single.status_code == 200 and single.json() == answers[i], (i, records[i])


def _problem(answer: Any, status: int, field: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error", "field", "message"} and body["field"] == field, body


def test_refusals_of_a_large_batch_name_the_record(client: TestClient) -> None:
    records = _records(client, 2_000, mixed=False)
    likes = {"category": "likes", "user_id": records[0]["user_id"], "purposes": records[0]["purposes"]}
    bad = {
        "user_id": {**records[0], "user_id": 999_999_999},
        "category": {**records[0], "category": "tweets"},
        "post_id": {**likes, "post_id": 7},
        "purposes": {**records[0], "purposes": ["sell_everything"]},
    }
    for field, record in bad.items():
        refused = [*records[:230], record, *records[231:]]
        _problem(client.post(f"{BASE}/decide/batch", json={"records": refused}), 400, f"records[230].{field}")
    over = client.post(f"{BASE}/decide/batch", json={"records": [records[0]] * 10_001})
    assert over.status_code in (400, 413), over.text
    assert over.json()["field"] == "records"


def test_regulator_orders_apply_to_api_decisions(client: TestClient) -> None:
    """An order in force refuses the records it covers (`regulator_order`) in `POST decide` and in a
    compiled batch alike, as `datalease decide` does (the orders are attached to the cached policy)."""
    ws = _ws(client)
    countries = tuple(sorted(set(ws.lake.read("users").column("country").to_pylist())))
    order = RegulatorOrder(
        order_id="api-order",
        issued_by="Data Protection Commission",
        reference="DPC-api",
        regions=(),
        countries=countries,
        categories=("posts",),
        purposes=("train_ai_system",),
        effective=datetime(2026, 1, 1, tzinfo=UTC),
        until=None,
    )
    with ws.write_session() as session, session.begin():
        add_order(session, order, "", datetime.now(UTC))
    at = datetime(2026, 5, 3, tzinfo=UTC)
    users = ws.lake.read("users").column("user_id").to_pylist()[:100]
    records = [
        {"user_id": u, "category": c, "purposes": [GENERATIVE], "at": "2026-05-03T00:00:00Z"}
        for u in users
        for c in ("posts", "likes")
    ]
    records = records * (3_000 // len(records) + 1)  # two plans, enough records to take them
    batch = client.post(f"{BASE}/decide/batch", json={"records": records})
    assert batch.status_code == 200, batch.text
    answers = batch.json()["decisions"]
    for i, (record, answer) in enumerate(zip(records, answers, strict=True)):
        if i < 40:  # the CLI's use case (services.decisions) attaches the orders itself
            expected = decide_record(ws, str(record["user_id"]), record["category"], (GENERATIVE,), at=at)
            assert answer["reasons"] == list(expected.decision.reasons), record
        assert ("regulator_order" in answer["reasons"]) == (record["category"] == "posts"), (record, answer)
    single = client.post(f"{BASE}/decide", json=records[0]).json()
    assert single == answers[0] and "regulator_order" in single["reasons"]


def test_an_order_recorded_while_serving_is_seen_by_the_next_checks(client: TestClient) -> None:
    """The cached policy is re-checked behind the answers: an order recorded after the first decision
    is applied by a later one (within about a second), without a restart."""
    ws = _ws(client)
    user = ws.lake.read("users").column("user_id").to_pylist()[0]
    record = {"user_id": user, "category": "posts", "purposes": [GENERATIVE], "at": "2026-05-03T00:00:00Z"}
    first = client.post(f"{BASE}/decide", json=record).json()
    assert "regulator_order" not in first["reasons"], first
    countries = tuple(sorted(set(ws.lake.read("users").column("country").to_pylist())))
    order = RegulatorOrder(
        order_id="later-order",
        issued_by="Data Protection Commission",
        reference="DPC-later",
        regions=(),
        countries=countries,
        categories=("posts",),
        purposes=("train_ai_system",),
        effective=datetime(2026, 1, 1, tzinfo=UTC),
        until=None,
    )
    with ws.write_session() as session, session.begin():
        add_order(session, order, "", datetime.now(UTC))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = client.post(f"{BASE}/decide", json=record).json()
        if "regulator_order" in answer["reasons"]:
            return
        time.sleep(0.1)
    raise AssertionError("the order was never applied to API decisions")
