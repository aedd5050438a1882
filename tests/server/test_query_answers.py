"""`/query` answers kept for reuse (sharing/answers.py) and token checks shared by the requests in
flight (server/coalesce.py): in-process, on the small home. What must hold: a reused answer is the
same bytes and still metered; a revoked token is refused at once, cached answer or not; a catalogue
change (an agreement ended) is never answered from the old catalogue; URLs too short-lived to
reuse are signed per request."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from small_home import AGREEMENT, SCHEMA, TABLE, SmallHome, settings

from datalease.licensing.tokens import parse_bearer
from datalease.sharing.answers import Answer, AnswerCache
from datalease.sharing.usagelog import fold_all
from datalease.store.licensing import set_status
from datalease.store.releases import latest_release, record_release
from datalease.store.sharing import revoke_token, usage_totals
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

AppClient = Callable[..., TestClient]
QUERY = f"/delta-sharing/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{TABLE}/query"


def _requests(ws: Workspace) -> int:
    fold_all(ws)
    with ws.session() as session:
        return sum(t.requests for t in usage_totals(session))


def _expirations(text: str) -> set[int]:
    lines = [json.loads(line) for line in text.splitlines()]
    return {line["file"]["expirationTimestamp"] for line in lines if "file" in line}


def test_a_repeated_query_is_the_same_answer_and_metered_each_time(
    home: SmallHome, app_client: AppClient
) -> None:
    ws = Workspace(settings(home.home))
    client = app_client()
    before = _requests(ws)
    first = client.post(QUERY, json={}, headers=home.partner_headers)
    assert first.status_code == 200, first.text
    time.sleep(1.1)  # a newly signed answer would carry a later expiry
    again = client.post(QUERY, json={}, headers=home.partner_headers)
    assert again.content == first.content and _expirations(first.text)
    other = client.post(QUERY, json={"limitHint": 1}, headers=home.partner_headers)
    assert other.status_code == 200 and other.content != first.content  # another request, its own answer
    assert _requests(ws) == before + 3


def test_a_revoked_token_is_refused_at_once_though_its_answer_is_kept(
    home: SmallHome, app_client: AppClient
) -> None:
    ws = Workspace(settings(home.home))
    client = app_client()
    assert client.post(QUERY, json={}, headers=home.partner_headers).status_code == 200
    bearer = parse_bearer(home.partner_bearer)
    assert bearer is not None
    with ws.session() as session, session.begin():
        revoke_token(session, bearer.token_id, utc_now())
    refused = client.post(QUERY, json={}, headers=home.partner_headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]


def test_an_agreement_status_change_is_never_answered_from_the_old_catalogue(
    home: SmallHome, app_client: AppClient
) -> None:
    ws = Workspace(settings(home.home))
    client = app_client()
    assert client.post(QUERY, json={}, headers=home.partner_headers).status_code == 200
    with ws.session() as session, session.begin():
        set_status(session, AGREEMENT, "terminated")  # with no deletion deadline: closed at once
    after = client.post(QUERY, json={}, headers=home.partner_headers)
    assert after.status_code == 404, after.text


def test_a_new_release_is_answered_anew(home: SmallHome, app_client: AppClient) -> None:
    """A release (here the same tables pinned again) is a new catalogue version: the answer is built
    and signed again, not reused."""
    ws = Workspace(settings(home.home))
    client = app_client()
    first = client.post(QUERY, json={}, headers=home.partner_headers)
    with ws.session() as session, session.begin():
        release = latest_release(session, AGREEMENT)
        assert release is not None
        record_release(session, release)
    time.sleep(1.1)
    # Another request reads the new catalogue first, so the query finds its table known.
    assert client.get(QUERY.replace("/query", "/version"), headers=home.partner_headers).status_code == 200
    again = client.post(QUERY, json={}, headers=home.partner_headers)
    assert first.status_code == again.status_code == 200
    assert min(_expirations(again.text)) > max(_expirations(first.text))


def test_short_lived_urls_are_signed_for_each_request(home: SmallHome, app_client: AppClient) -> None:
    client = app_client(file_url_lifetime_s=10)  # a twentieth of it is under a second: no reuse
    first = client.post(QUERY, json={}, headers=home.partner_headers)
    time.sleep(1.1)
    again = client.post(QUERY, json={}, headers=home.partner_headers)
    assert first.status_code == again.status_code == 200
    assert min(_expirations(again.text)) > max(_expirations(first.text))


def _answer(size: int, expires: int) -> Answer:
    return Answer(b"x" * size, 1, 1, 1, expires)


def test_the_answer_cache_reuses_for_a_twentieth_of_the_lifetime_and_holds_its_byte_bound() -> None:
    cache = AnswerCache(3600, max_bytes=800)
    assert cache.reuse_s == 60  # at most a minute
    now = 1_000_000.0
    cache.put(("a",), _answer(100, int(now) + 3600))
    assert cache.get(("a",), now + 59) is not None
    assert cache.get(("a",), now + 61) is None  # re-signed from then on
    for i in range(10):  # 10 × 100 bytes over a bound of 800: the least recently used go
        cache.put((i,), _answer(100, int(now) + 3600))
    assert cache.get((0,), now) is None and cache.get((1,), now) is None and cache.get((9,), now) is not None
    cache.put(("big",), _answer(101, int(now) + 3600))  # over an eighth of the bound: never kept
    assert cache.get(("big",), now) is None
    assert AnswerCache(19).reuse_s == 0 and AnswerCache(400).reuse_s == 20
