"""The My posts page (issue 18): the author sees their posts with a per-post "for AI training" toggle;
pressing it records `post.<id>.ai_training` in the ledger (and queues its revocation, scope post); the
toggle then reads "not for AI training". Another person's post cannot be chosen for (refused, nothing
recorded), nor can another person's post list be seen, and a form without its CSRF token is refused."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from pages import csrf_of, is_error_page
from small_home import SmallHome, settings

from datalease.policy.vocabulary import post_choice_key
from datalease.web.sessions import user_token
from datalease.workspace import Workspace


def _authors(ws: Workspace) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for row in ws.lake.read("posts").select(["post_id", "author_id"]).to_pylist():
        out.setdefault(row["author_id"], []).append(row["post_id"])
    return out


def _sign_in(client: TestClient, ws: Workspace, user_id: int) -> None:
    answer = client.get("/login", params={"token": user_token(ws.master_key, user_id)})
    assert answer.status_code == 303, answer.text


def _pending_post_intents(ws: Workspace) -> list[tuple[str, int]]:
    with ws.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT detail, user_id FROM revocation_intents WHERE detail LIKE 'post.%'"
        ).fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


def test_the_author_keeps_one_post_out_of_training_from_the_post_list(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    ws = Workspace(settings(home.home))
    authors = _authors(ws)
    author = max(authors, key=lambda a: len(authors[a]))
    other = next(a for a in authors if a != author)
    post, theirs = authors[author][0], authors[other][0]
    client = app_client()
    _sign_in(client, ws, author)
    page = client.get(f"/users/{author}/posts")
    assert page.status_code == 200, page.text
    assert page.text.count('data-post="') == len(authors[author])
    assert f'data-post="{theirs}"' not in page.text
    assert "Keep out of AI training" in page.text

    chosen = client.post(
        f"/users/{author}/posts/{post}/ai-training", data={"allowed": "false", "csrf": csrf_of(page)}
    )
    assert chosen.status_code == 303, chosen.text
    assert ws.consent_at(author, None)[post_choice_key(post)] is False
    assert _pending_post_intents(ws) == [(post_choice_key(post), author)]
    after = client.get(chosen.headers["location"])
    assert f"Saved your choice for post {post}" in after.text
    item = after.text.split(f'id="post-{post}"', 1)[1].split("</li>", 1)[0]
    assert "not for AI training" in item and "Allow for AI training" in item

    # Someone else's post: refused, nothing recorded.
    refused = client.post(
        f"/users/{author}/posts/{theirs}/ai-training", data={"allowed": "false", "csrf": csrf_of(page)}
    )
    is_error_page(refused, 404)
    assert "only its author" in refused.text
    assert post_choice_key(theirs) not in ws.consent_at(author, None)
    assert post_choice_key(theirs) not in ws.consent_at(other, None)
    # Another person's list, and a form without its token.
    is_error_page(client.get(f"/users/{other}/posts"), 403)
    is_error_page(client.post(f"/users/{author}/posts/{post}/ai-training", data={"allowed": "true"}), 403)
    assert ws.consent_at(author, None)[post_choice_key(post)] is False
    ws.engine.dispose()
