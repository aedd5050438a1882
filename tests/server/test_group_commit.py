"""Group commit of settings writes (services/group_commit.py) on a real SQLite store: while one commit
waits for the database, the calls that arrive meanwhile are committed together in ONE transaction
(their events share one `recorded_at`), each call gets exactly its own seq range, every event is in
the ledger once and the hash chain verifies; a call refused by the ledger fails alone."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from typing import Any

from small_home import SmallHome, settings

from datalease.consent.inputs import ConsentError, new_event_ids
from datalease.consent.ledger import NewConsentEvent
from datalease.services.group_commit import committer_of
from datalease.services.settings_api import RequestSignals, SettingChange, SettingsApiError, write_settings
from datalease.workspace import Workspace

CALLS = 8
KEYS = ("share.posts", "share.likes", "share.reposts", "share.bookmarks", "share.profile")


def _write(ws: Workspace, users: list[int], value: bool, answers: dict[int, Any], i: int) -> None:
    changes = [SettingChange(u, KEYS[i % len(KEYS)], value) for u in users]
    try:
        answers[i] = write_settings(ws, changes, actor=f"test:{i}", signals=RequestSignals())[1]
    except SettingsApiError as exc:
        answers[i] = exc


def test_waiting_calls_share_one_commit(home: SmallHome) -> None:
    ws = Workspace(settings(home.home))
    users = ws.lake.read("users").column("user_id").to_pylist()[:5]
    before = ws.ledger.count()
    answers: dict[int, Any] = {}
    blocker = sqlite3.connect(home.home / "datalease.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the database is busy: the first call waits inside its commit
    threads = [
        threading.Thread(target=_write, args=(ws, users, i % 2 == 0, answers, i)) for i in range(CALLS)
    ]
    threads[0].start()
    committer = committer_of(ws)
    deadline = time.monotonic() + 60
    while not committer._leading and time.monotonic() < deadline:
        time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    while len(committer._pending) < CALLS - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(committer._pending) == CALLS - 1
    blocker.execute("ROLLBACK")
    blocker.close()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(a, dict) for a in answers.values()), answers
    ranges = sorted((a["first_seq"], a["last_seq"]) for a in answers.values())
    assert all(last - first + 1 == len(users) for first, last in ranges)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    assert ws.ledger.count() == before + CALLS * len(users)
    assert ws.ledger.verify().ok
    with sqlite3.connect(home.home / "datalease.db") as db:
        stamps = {
            r[0]
            for r in db.execute("SELECT recorded_at FROM consent_events WHERE seq > ?", (ranges[0][0] - 1,))
        }
        for i, answer in answers.items():
            rows = db.execute(
                "SELECT DISTINCT key, actor FROM consent_events WHERE seq BETWEEN ? AND ?",
                (answer["first_seq"], answer["last_seq"]),
            ).fetchall()
            assert rows == [(KEYS[i % len(KEYS)], f"test:{i}")]
    assert len(stamps) == 2, stamps  # the first call alone, then the seven that waited, together
    ws.engine.dispose()


def test_a_refused_call_fails_alone(home: SmallHome) -> None:
    ws = Workspace(settings(home.home))
    users = ws.lake.read("users").column("user_id").to_pylist()[:3]
    taken = ws.ledger.record(users[0], "share.posts", False, event_id=new_event_ids(1)[0])
    before = ws.ledger.count()
    committer = committer_of(ws)
    conflicting = [NewConsentEvent(users[0], "share.posts", True, event_id=taken.event_id)]
    good = [
        [
            NewConsentEvent(u, "share.likes", False, event_id=i)
            for u, i in zip(users, new_event_ids(3), strict=True)
        ]
        for _ in range(3)
    ]
    outcomes: dict[int, Any] = {}

    def submit(i: int, events: list[NewConsentEvent]) -> None:
        try:
            outcomes[i] = committer.record(events)
        except ConsentError as exc:
            outcomes[i] = exc

    blocker = sqlite3.connect(home.home / "datalease.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    requests = [good[0], conflicting, good[1], good[2]]
    threads = [threading.Thread(target=submit, args=(i, r)) for i, r in enumerate(requests)]
    threads[0].start()
    deadline = time.monotonic() + 60
    while not committer._leading and time.monotonic() < deadline:
        time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    while len(committer._pending) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    blocker.execute("ROLLBACK")
    blocker.close()
    for thread in threads:
        thread.join(timeout=120)
    assert isinstance(outcomes[1], ConsentError) and outcomes[1].field == "event_id"
    assert all(outcomes[i].appended == 3 for i in (0, 2, 3)), outcomes
    assert ws.ledger.count() == before + 9
    assert ws.ledger.verify().ok
    ws.engine.dispose()
