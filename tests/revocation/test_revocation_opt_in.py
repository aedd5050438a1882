"""After an opt-out, its delivery and the partner's acknowledgement (through the API): compliance and
"where my data went" say so; opting back in brings the rows back as new inserts and leaves the forget
entry and its acknowledgement exactly as they were."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from cli_harness import expect, rows, run
from release_world import LUMEN, SENTIMETRICS
from revocation_world import (
    Partner,
    Served,
    as_rows,
    frame_rows,
    heavy_users,
    identity,
    oracle_now,
    replay,
    user_key_of,
)

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release
from datalease.workspace import Workspace

CERTIFICATE = "unlearning certificate #42: SISA shards 3, 7 retrained"


def forget_items(partner: Partner, pending: bool = False) -> list[dict[str, Any]]:
    response = partner.api("GET", "/api/v1/partner/forget", params={"pending": str(pending).lower()})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def by_agreement(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["agreement_id"]: a for a in report["agreements"]}


def test_compliance_report_and_opting_back_in(home: Workspace, server: Callable[..., Served]) -> None:
    ws = home
    path = ws.settings.resolved_home
    victim, other = heavy_users(ws, LUMEN, 2, also=SENTIMETRICS)
    served = server(path)
    lumen = served.partner("lumen-labs")
    version_before = lumen.version(LUMEN, "posts")

    ws.ledger.record(victim, MASTER_KEY, False)
    ws.ledger.record(other, MASTER_KEY, False)
    assert process_pending(ws).intents == 2

    victim_key = user_key_of(ws, LUMEN, victim)
    pending = forget_items(lumen, pending=True)
    assert sorted(i["subject_key"] for i in pending) == sorted([victim_key, user_key_of(ws, LUMEN, other)])
    assert all(i["state"] == "pending" and i["reason_code"] == "opted_out" for i in pending)
    entry = next(i for i in pending if i["subject_key"] == victim_key)
    ack = lumen.api(
        "POST", "/api/v1/partner/forget/ack", json={"ids": [entry["id"]], "certificate": CERTIFICATE}
    )
    assert ack.status_code == 200 and ack.json() == {"acknowledged": 1, "already_acknowledged": 0}, ack.text
    # Acknowledging again keeps the first acknowledgement and its certificate.
    again = lumen.api(
        "POST", "/api/v1/partner/forget/ack", json={"ids": [entry["id"]], "certificate": "other"}
    )
    assert again.json() == {"acknowledged": 0, "already_acknowledged": 1}, again.text
    stored_before = rows(path, "SELECT * FROM forget_entries ORDER BY forget_id")
    acked = next(i for i in forget_items(lumen) if i["id"] == entry["id"])
    assert acked["state"] == "acknowledged" and acked["acknowledged_at"] is not None

    compliance = expect(run("compliance", "--json", home=path), 0).json()
    assert compliance["intents_waiting"] == 0
    agreements = {a["agreement_id"]: a for a in compliance["agreements"]}
    assert set(agreements) == {LUMEN, SENTIMETRICS}
    got = agreements[LUMEN]
    assert (got["entries"], got["pending"], got["acknowledged"], got["overdue"]) == (2, 1, 1, 0), got
    assert got["to_ack"]["count"] == 1 and got["to_delete"]["count"] == 2, got
    assert got["oldest_pending_deadline"] is not None
    senti = agreements[SENTIMETRICS]
    assert (senti["entries"], senti["pending"], senti["acknowledged"]) == (2, 2, 0), senti

    report = by_agreement(expect(run("report", "user", str(victim), "--json", home=path), 0).json())
    line = report[LUMEN]
    assert line["user_key"] == victim_key
    assert all(n == 0 for n in line["rows_shared"].values()), line
    assert [(f["id"], f["state"], f["certificate"]) for f in line["forget"]] == [
        (entry["id"], "acknowledged", CERTIFICATE)
    ]
    assert line["forget"][0]["acknowledged_at"] is not None
    assert line["rows_revoked"] == line["forget"][0]["rows"] > 0
    assert [f["state"] for f in report[SENTIMETRICS]["forget"]] == ["pending"]
    revoked_version = lumen.version(LUMEN, "posts")
    assert revoked_version > version_before

    # Opting back in: the next build sends the rows again as new inserts.
    ws.ledger.record(victim, MASTER_KEY, True)
    build_release(ws, LUMEN)
    allowed = oracle_now(ws, LUMEN)
    mine = {identity(r, "posts") for r in allowed["posts"] if dict(r)["user_key"] == victim_key}
    assert mine, "the victim has no posts to send again"
    snapshot = as_rows(frame_rows(lumen.snapshot(LUMEN, "posts")))
    assert snapshot == allowed["posts"]
    feed = frame_rows(lumen.changes(LUMEN, "posts", revoked_version + 1))
    back = [c for c in feed if c["user_key"] == victim_key]
    assert back and all(c["_change_type"] == "insert" for c in back), Counter(c["_change_type"] for c in back)
    assert {identity(c, "posts") for c in back} == mine
    whole = frame_rows(lumen.changes(LUMEN, "posts", 0))
    deletes = [c for c in whole if c["user_key"] == victim_key and c["_change_type"] == "delete"]
    assert {identity(c, "posts") for c in deletes} == mine  # the earlier deletes stay in the record
    assert as_rows(replay({}, whole, "posts").values()) == snapshot

    # The forget entry and its acknowledgement are untouched.
    assert rows(path, "SELECT * FROM forget_entries ORDER BY forget_id") == stored_before
    after = next(i for i in forget_items(lumen) if i["id"] == entry["id"])
    assert after["state"] == "acknowledged"
    assert (
        after["acknowledged_at"]
        == next(i for i in forget_items(lumen) if i["id"] == entry["id"])["acknowledged_at"]
    )
    report_after = by_agreement(expect(run("report", "user", str(victim), "--json", home=path), 0).json())
    assert report_after[LUMEN]["forget"] == line["forget"]
    assert report_after[LUMEN]["rows_shared"]["posts"] == len(mine)
    compliance_after = expect(run("compliance", "--json", home=path), 0).json()
    lumen_after = next(a for a in compliance_after["agreements"] if a["agreement_id"] == LUMEN)
    assert (lumen_after["entries"], lumen_after["pending"], lumen_after["acknowledged"]) == (2, 1, 1)
