"""An agreement whose tables empty out, and an agreement whose deliveries fail, stop no revocation.

Issue 11, item 0: an agreement of five categories whose tables empty one by one keeps building and
keeps receiving revocations (the diff once registered an empty table under a view name another table
had taken, and every build and batch of that agreement failed); one agreement whose delivery fails
never holds back the others, and the failure is visible — compliance, the operator console's data,
`/health` answering 503 — with its error and since when, until it heals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from release_oracle import check_release
from revocation_world import (
    FIVE,
    FIVE_PARTNER,
    LUMEN,
    RELEASED,
    SENTIMETRICS,
    TABLES,
    Partner,
    Served,
    as_rows,
    delta_rows,
    frame_rows,
    heavy_users,
    license_five,
    oracle_now,
)

from datalease.app import create_app
from datalease.consent.ledger import NewConsentEvent
from datalease.errors import UserError
from datalease.policy.vocabulary import MASTER_KEY, category_key
from datalease.releases import delta
from datalease.reporting.compliance import compliance
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release
from datalease.sharing.profiles import issue_profile
from datalease.store.releases import latest_release
from datalease.store.revocation import delivery_failures
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

# The order tables empty in: never the last first, so an earlier table always still has files.
EMPTYING = ("bookmarks", "reposts", "likes", "profile", "posts")


def test_five_tables_emptying_one_by_one_keep_building_and_revoking(
    home: Workspace, server: Callable[..., Served], tmp_path: Path
) -> None:
    ws = home
    license_five(ws)
    build_release(ws, FIVE)
    users = ws.lake.read("users")["user_id"].to_pylist()
    for category in EMPTYING:
        assert delta_rows(ws, FIVE, category), f"{category} was empty before its turn"
    for step, category in enumerate(EMPTYING):
        # Everybody withdraws this category: a revocation batch empties the table …
        ws.ledger.record_many(
            [NewConsentEvent(u, category_key(category), False, at=utc_now()) for u in users]
        )
        result = process_pending(ws)
        assert not result.failures, result.failures
        assert delta_rows(ws, FIVE, category) == [], f"{category} not emptied"
        for later in EMPTYING[step + 1 :]:
            assert delta_rows(ws, FIVE, later), f"{later} emptied too early"
        # … and the next build, incremental or full, still works, as does an opt-out after it.
        build_release(ws, FIVE, full=step % 2 == 1)
        check_release(ws, FIVE)
        ws.ledger.record(users[step], MASTER_KEY, False)
        assert not process_pending(ws).failures
        with ws.session() as session:
            assert not delivery_failures(session)
    # Every table of the share, empty ones included, is readable through the official client.
    served = server(ws.settings.resolved_home)
    partner = _partner_for(served, ws, tmp_path)
    for category in EMPTYING:
        assert frame_rows(partner.snapshot(FIVE, category)) == []
        partner.changes(FIVE, category, 0)


def _partner_for(served: Served, ws: Workspace, tmp_path: Path) -> Partner:
    """A profile for the five-categories partner on this server."""
    out = tmp_path / "fiveco.share"
    issue_profile(ws, FIVE_PARTNER, out, expires="1d", endpoint_base=served.server.base)
    bearer = json.loads(out.read_text())["bearerToken"]
    return Partner(FIVE_PARTNER, out, bearer, json.loads(out.read_text())["endpoint"])


def _holds_what_is_allowed(ws: Workspace, agreement: str) -> None:
    allowed = oracle_now(ws, agreement)
    for table in TABLES[agreement]:
        assert as_rows(delta_rows(ws, agreement, table)) == allowed[table], f"{agreement}.{table}"


def _break(ws: Workspace, agreement: str) -> tuple[Path, bytes]:
    """Make the agreement's posts table unreadable (one of its data files gone), as a broken disk would."""
    files = delta.table_files(ws.table_dir(agreement, "posts"))
    victim = ws.table_dir(agreement, "posts") / files[0].path
    content = victim.read_bytes()
    victim.unlink()
    return victim, content


def test_a_failing_agreement_holds_back_no_other_and_says_so(home: Workspace) -> None:
    ws = home
    opted = heavy_users(ws, SENTIMETRICS, 2, also=LUMEN)
    late = heavy_users(ws, SENTIMETRICS, 3)[-1]
    broken, content = _break(ws, LUMEN)
    for user in opted:
        ws.ledger.record(user, MASTER_KEY, False, at=utc_now())
    result = process_pending(ws)

    # The healthy agreement got its deletes; the broken one is recorded as failing, with its error.
    assert [f.agreement_id for f in result.failures] == [LUMEN]
    _holds_what_is_allowed(ws, SENTIMETRICS)
    with ws.session() as session:
        (failure,) = delivery_failures(session)
        report = compliance(session, utc_now())
    assert failure.agreement_id == LUMEN and failure.attempts == 1
    assert "IOException" in failure.error or "No files" in failure.error or "exist" in failure.error
    assert report.failures == (failure,) and report.intents_waiting == len(opted)

    # Another opt-out later still reaches the healthy agreement at once; the failure counts up.
    ws.ledger.record(late, MASTER_KEY, False, at=utc_now())
    assert [f.attempts for f in process_pending(ws).failures] == [2]
    _holds_what_is_allowed(ws, SENTIMETRICS)

    # /health answers 503 naming the agreement; a build of it refuses; the others build.
    with TestClient(create_app(ws.settings)) as client:
        answer = client.get("/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["revocations"]["failing"][0]["agreement"] == LUMEN
    assert body["revocations"]["failing"][0]["since"] == failure.since.isoformat()
    with pytest.raises(UserError, match="revocations are waiting"):
        build_release(ws, LUMEN)
    build_release(ws, SENTIMETRICS)

    # Healed: the next batch delivers everything to it, the failure is gone, /health is 200.
    broken.write_bytes(content)
    assert not process_pending(ws).failures
    for agreement in RELEASED:
        _holds_what_is_allowed(ws, agreement)
    with ws.session() as session:
        assert delivery_failures(session) == []
        assert compliance(session, utc_now()).intents_waiting == 0
        assert latest_release(session, LUMEN) is not None
    with TestClient(create_app(ws.settings)) as client:
        assert client.get("/health").status_code == 200


def test_the_loop_waits_longer_between_attempts_at_a_failing_agreement(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, LUMEN, 1)[0]
    _break(ws, LUMEN)
    ws.ledger.record(user, MASTER_KEY, False, at=utc_now())
    now = utc_now()
    assert len(process_pending(ws, now=now, respect_backoff=True).failures) == 1
    # Within the pause the loop leaves it alone; a person's `revoke process` retries at once.
    assert process_pending(ws, now=now + timedelta(milliseconds=100), respect_backoff=True).failures == ()
    assert len(process_pending(ws, now=now + timedelta(milliseconds=200)).failures) == 1
    assert len(process_pending(ws, now=now + timedelta(minutes=5), respect_backoff=True).failures) == 1
