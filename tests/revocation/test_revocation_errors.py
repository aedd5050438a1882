"""Bad input: `datalease event` exits non-zero naming the field, the platform API answers 400 with an
errorCode naming it, and nothing of a refused submission is recorded. Partners acknowledge only their
own forget entries, and every endpoint wants its token."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cli_harness import count, expect, rows, run, single_error
from release_world import LUMEN, SENTIMETRICS
from revocation_world import HTTP_TIMEOUT, Base, Partner, Served, heavy_users, serve, workspace

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import process_pending


@dataclass(frozen=True)
class Facts:
    home: Path
    served: Served
    victim: int  # opted out and delivered: forget entries in both shares
    users: list[int]  # active users with posts, none of them the victim
    posts: dict[int, list[int]]  # user -> their posts
    like: tuple[int, int]  # a (user, post) like that exists

    def user(self, index: int) -> int:
        return self.users[index]


@pytest.fixture(scope="module")
def facts(base: Base, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facts]:
    root = tmp_path_factory.mktemp("revocation-errors")
    home = root / "home"
    shutil.copytree(base.home, home)
    ws = workspace(home)
    victim = heavy_users(ws, LUMEN, 1, also=SENTIMETRICS)[0]
    ws.ledger.record(victim, MASTER_KEY, False)
    process_pending(ws)
    states = {u["user_id"]: u["account_state"] for u in ws.lake.read("users").to_pylist()}
    posts: dict[int, list[int]] = {}
    for post in ws.lake.read("posts").to_pylist():
        posts.setdefault(post["author_id"], []).append(post["post_id"])
    users = sorted(u for u in posts if states[u] == "active" and u != victim)
    like = next(
        (r["user_id"], r["post_id"]) for r in ws.lake.read("likes").to_pylist() if r["user_id"] in users
    )
    ws.engine.dispose()
    served = serve(base, home, root)
    try:
        yield Facts(home, served, victim, users, posts, like)
    finally:
        served.stop()


def refused(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    body = response.json()
    assert body["errorCode"] == code, body
    message: str = body["message"]
    return message


def recorded_events(home: Path) -> int:
    return count(home, "platform_events")


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_refuses_unknown_users_and_posts_naming_the_field(facts: Facts) -> None:
    home, user = facts.home, facts.user(0)
    other = next(u for u in facts.users if u != user)
    before = recorded_events(home)
    cases: list[tuple[tuple[str, ...], str]] = [
        (("user_protect", "9999999"), "user_id: no user 9999999"),
        (("post_delete", str(user), "--post", "9999999"), "post_id: no post 9999999"),
        (
            ("post_delete", str(user), "--post", str(facts.posts[other][0])),
            f"post_id: post {facts.posts[other][0]} is not by user {user}",
        ),
        (("no_such_event", str(user)), "type: expected one of"),
        (("user_country_change", str(user), "--country", "XX"), "country: expected an ISO 3166-1"),
        (("user_protect", str(user), "--id", "not an id!"), ".id: expected 1–64 characters"),
    ]
    for args, expected in cases:
        message = single_error(run("event", *args, home=home))
        assert expected in message, (args, message)
    assert recorded_events(home) == before


def test_cli_refuses_any_event_for_a_deleted_account(facts: Facts) -> None:
    home, user = facts.home, facts.user(1)
    expect(run("event", "user_delete", str(user), "--id", "cli-delete-1", home=home), 0)
    before = recorded_events(home)
    message = single_error(
        run("event", "post_delete", str(user), "--post", str(facts.posts[user][0]), home=home)
    )
    assert f"user_id: account {user} is already deleted" in message, message
    # The same event again (a retry) is still accepted as a no-op.
    again = expect(run("event", "user_delete", str(user), "--id", "cli-delete-1", home=home), 0)
    assert "already recorded" in again.out
    assert recorded_events(home) == before


def test_cli_duplicate_event_id_is_idempotent_with_the_same_content_and_refused_with_other(
    facts: Facts,
) -> None:
    home, user = facts.home, facts.user(2)
    post = facts.posts[user][0]
    first = expect(
        run("event", "post_delete", str(user), "--post", str(post), "--id", "cli-dup-1", home=home), 0
    )
    assert "cli-dup-1 recorded" in first.out
    again = expect(
        run("event", "post_delete", str(user), "--post", str(post), "--id", "cli-dup-1", home=home), 0
    )
    assert "already recorded" in again.out
    message = single_error(run("event", "user_protect", str(user), "--id", "cli-dup-1", home=home))
    assert ".id: event id 'cli-dup-1' was already recorded" in message, message
    assert rows(home, "SELECT count(*) FROM platform_events WHERE event_id = 'cli-dup-1'") == [(1,)]
    assert rows(home, "SELECT count(*) FROM revocation_intents WHERE event_id = 'cli-dup-1'") == [(1,)]


# --- the platform API ------------------------------------------------------------------------------


def test_events_need_the_platform_token(facts: Facts) -> None:
    event = {"type": "user_protect", "user_id": facts.user(3)}
    before = recorded_events(facts.home)
    refused(facts.served.post_events(event, token=None), 401, "UNAUTHENTICATED")
    refused(facts.served.post_events(event, token="dlp_wrong"), 401, "UNAUTHENTICATED")
    partner_bearer = facts.served.partner("lumen-labs").bearer
    refused(facts.served.post_events(event, token=partner_bearer), 401, "UNAUTHENTICATED")
    assert recorded_events(facts.home) == before


def bad_events(facts: Facts) -> list[tuple[Any, str]]:
    user = facts.user(4)
    other = next(u for u in facts.users if u != user)
    return [
        ({"user_id": user}, "events[0].type"),
        ({"type": "user_protect", "user_id": user, "colour": "red"}, "events[0].colour: unknown field"),
        ({"type": "user_protect"}, "events[0].user_id: required"),
        ({"type": "user_protect", "user_id": "12"}, "events[0].user_id: expected a non-negative integer"),
        ({"type": "user_protect", "user_id": -1}, "events[0].user_id"),
        ({"type": "user_country_change", "user_id": user, "country": "ZZ"}, "events[0].country"),
        ({"type": "user_protect", "user_id": user, "id": "x" * 65}, "events[0].id"),
        ({"type": "user_protect", "user_id": user, "id": 12}, "events[0].id"),
        ({"type": "user_protect", "user_id": user, "at": "not a time"}, "events[0].at"),
        ({"type": "user_protect", "user_id": 9999999}, "events[0].user_id: no user 9999999"),
        ({"type": "post_delete", "user_id": user}, "events[0].post_id: required"),
        ({"type": "post_delete", "user_id": user, "post_id": 9999999}, "events[0].post_id: no post 9999999"),
        (
            {"type": "post_delete", "user_id": user, "post_id": facts.posts[other][0]},
            f"events[0].post_id: post {facts.posts[other][0]} is not by user {user}",
        ),
        ("just text", "events[0]: expected a JSON object"),
        ({"events": {"type": "user_protect"}}, "events: expected a list"),
        ({"events": []}, "events: expected at least one event"),
        (
            {"events": [{"type": "user_protect", "user_id": user}, {"type": "post_delete", "user_id": user}]},
            "events[1].post_id: required",
        ),
    ]


def test_api_refuses_malformed_events_with_400_naming_the_field(facts: Facts) -> None:
    before = recorded_events(facts.home)
    for body, expected in bad_events(facts):
        message = refused(facts.served.post_events(body), 400, "INVALID_PARAMETER_VALUE")
        assert expected in message, (body, message)
    assert recorded_events(facts.home) == before  # the valid first event of the last batch neither


def test_api_duplicate_event_ids_and_deleted_accounts(facts: Facts) -> None:
    user, deleted = facts.user(5), facts.user(6)
    event = {"id": "api-dup-1", "type": "user_protect", "user_id": user}
    first = facts.served.post_events(event)
    assert first.status_code == 202, first.text
    assert first.json()["events"][0]["status"] == "recorded"
    again = facts.served.post_events({"events": [event]})
    assert again.status_code == 202, again.text
    assert again.json()["events"][0]["status"] == "duplicate"
    message = refused(
        facts.served.post_events({**event, "type": "user_suspend"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "events[0].id" in message and "different content" in message, message
    assert rows(facts.home, "SELECT count(*) FROM revocation_intents WHERE event_id = 'api-dup-1'") == [(1,)]

    accepted = facts.served.post_events({"type": "user_delete", "user_id": deleted})
    assert accepted.status_code == 202, accepted.text
    for body in (
        {"type": "user_suspend", "user_id": deleted},
        {"type": "user_delete", "user_id": deleted},
        {"type": "post_delete", "user_id": deleted, "post_id": facts.posts[deleted][0]},
    ):
        message = refused(facts.served.post_events(body), 400, "INVALID_PARAMETER_VALUE")
        assert f"events[0].user_id: account {deleted} is already deleted" in message, message


# --- the partner's forget list -------------------------------------------------------------------


def forget_ids(partner: Partner) -> list[str]:
    response = partner.api("GET", "/api/v1/partner/forget")
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_an_ack_naming_another_partners_entry_is_refused_and_acknowledges_nothing(facts: Facts) -> None:
    lumen, sentimetrics = facts.served.partner("lumen-labs"), facts.served.partner("sentimetrics")
    mine, theirs = forget_ids(lumen), forget_ids(sentimetrics)
    assert mine and theirs and not set(mine) & set(theirs)
    response = lumen.api("POST", "/api/v1/partner/forget/ack", json={"ids": [*mine, theirs[0]]})
    message = refused(response, 403, "PERMISSION_DENIED")
    assert "not forget entries of lumen-labs" in message
    unknown = lumen.api("POST", "/api/v1/partner/forget/ack", json={"ids": ["0" * 32]})
    refused(unknown, 403, "PERMISSION_DENIED")
    assert rows(facts.home, "SELECT count(*) FROM forget_entries WHERE acked_at IS NOT NULL") == [(0,)]
    # Each partner sees only its own entries.
    assert {i["share"] for i in lumen.api("GET", "/api/v1/partner/forget").json()["items"]} == {LUMEN}


def test_forget_list_and_ack_need_a_partner_token(facts: Facts) -> None:
    base = facts.served.base + "/api/v1/partner/forget"
    refused(requests.get(base, timeout=HTTP_TIMEOUT), 401, "UNAUTHENTICATED")
    mine = forget_ids(facts.served.partner("lumen-labs"))
    refused(requests.post(base + "/ack", json={"ids": mine}, timeout=HTTP_TIMEOUT), 401, "UNAUTHENTICATED")
    bad = {"Authorization": "Bearer dls_nope_nope"}
    refused(
        requests.post(base + "/ack", json={"ids": mine}, headers=bad, timeout=HTTP_TIMEOUT),
        401,
        "UNAUTHENTICATED",
    )
    platform = {"Authorization": "Bearer " + "dlp_revocation-tests-platform-token"}
    refused(requests.get(base, headers=platform, timeout=HTTP_TIMEOUT), 401, "UNAUTHENTICATED")
    empty = facts.served.partner("lumen-labs").api("POST", "/api/v1/partner/forget/ack", json={"ids": []})
    refused(empty, 400, "INVALID_PARAMETER_VALUE")
    assert rows(facts.home, "SELECT count(*) FROM forget_entries WHERE acked_at IS NOT NULL") == [(0,)]
