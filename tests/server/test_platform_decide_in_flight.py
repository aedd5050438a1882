"""Single decisions in flight at once are decided together (api/platform_decide.py, server/coalesce.py)
and must answer exactly what each would answer alone: a bad request among them is refused on its own
(its status and field, as if it came alone), the others are still decided.

`decide_each` in-process pins the per-request refusals; a real `datalease serve` under 16 concurrent
keep-alive clients pins the answers end to end (sixteen clients keep several requests in flight, so
they are coalesced).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from fastapi.testclient import TestClient
from sharing_world import Server
from small_home import SmallHome, settings

from datalease.app import YOUNG_OBJECTS
from datalease.policy.model import Decision
from datalease.services.platform_decide import DecideRequest, decide_each, decide_many
from datalease.services.settings_api import SettingsApiError
from datalease.workspace import Workspace

GENERATIVE = "train_ai_system.generative"
UNKNOWN_USER = 999_999_999
CLIENTS = 16


def _ws(client: TestClient) -> Workspace:
    ws: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    return ws


def test_decide_each_refuses_each_bad_request_alone(client: TestClient) -> None:
    ws = _ws(client)
    users = ws.lake.read("users").column("user_id").to_pylist()[:4]
    asked = [
        DecideRequest(users[0], "posts", (GENERATIVE,)),
        DecideRequest(UNKNOWN_USER, "posts", (GENERATIVE,)),
        DecideRequest(users[1], "likes", (GENERATIVE,)),
        DecideRequest(users[2], "tweets", (GENERATIVE,)),
        DecideRequest(users[3], "profile", ("nonsense",)),
        DecideRequest(users[3], "likes", (GENERATIVE,), post_id=1),
        DecideRequest(users[3], "profile", (GENERATIVE,)),
    ]
    found = decide_each(ws, asked)
    assert len(found) == len(asked)
    refusals = {i: (f.status, f.field) for i, f in enumerate(found) if isinstance(f, SettingsApiError)}
    assert refusals == {1: (404, "user_id"), 3: (400, "category"), 4: (400, "purposes"), 5: (400, "post_id")}
    for i, answer in enumerate(found):
        if i not in refusals:
            assert isinstance(answer, Decision)
            assert answer == decide_many(ws, [asked[i]], batch=False)[0]  # as if it came alone
    for i, (status, field) in refusals.items():
        try:
            decide_many(ws, [asked[i]], batch=False)
        except SettingsApiError as alone:
            assert (alone.status, alone.field) == (status, field)
        else:
            raise AssertionError(f"request {i} was decided alone")
    assert decide_each(ws, []) == []


def test_concurrent_single_decides_answer_what_each_answers_alone(
    real_server: Callable[..., Server], home: SmallHome
) -> None:
    server = real_server()
    url = f"{server.base}/api/v1/platform/decide"
    headers = home.platform_headers
    ws = Workspace(settings(home.home))
    users = ws.lake.read("users").column("user_id").to_pylist()[:12]
    ws.engine.dispose()
    bodies: list[dict[str, Any]] = []
    for n in range(240):
        body: dict[str, Any] = {
            "user_id": users[n % len(users)],
            "category": ("posts", "likes", "profile")[n % 3],
        }
        body["purposes"] = [GENERATIVE]
        if n % 7 == 3:
            body["user_id"] = UNKNOWN_USER
        elif n % 11 == 5:
            body["category"] = "tweets"
        elif n % 13 == 6:
            body["at"] = "2026-05-03T00:00:00Z"
        bodies.append(body)

    def ask(body: dict[str, Any], session: requests.Session) -> tuple[int, Any]:
        answer = session.post(url, data=json.dumps(body), headers=headers, timeout=30)
        return answer.status_code, answer.json()

    with requests.Session() as alone:
        expected = [ask(body, alone) for body in bodies]  # one at a time: nothing to coalesce with
    sessions = [requests.Session() for _ in range(CLIENTS)]
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            together = list(pool.map(lambda n: ask(bodies[n], sessions[n % CLIENTS]), range(len(bodies))))
    finally:
        for session in sessions:
            session.close()
    assert together == expected
    statuses = {status for status, _ in expected}
    assert statuses == {200, 400, 404}, statuses
    assert {a["field"] for s, a in expected if s != 200} == {"user_id", "category"}


def test_the_served_app_collects_its_young_objects_less_often(client: TestClient) -> None:
    """A 10,000-record batch's records all live until its answer; with CPython's default young
    threshold (700) they set off collections over everything the process holds (app.py)."""
    assert client.app is not None  # the lifespan ran
    assert gc.get_threshold()[0] == YOUNG_OBJECTS
