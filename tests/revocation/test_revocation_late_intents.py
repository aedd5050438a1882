"""A release build must not send back what a revocation withdrew while it ran.

Seen under load (two workers, two servers and a build loop on PostgreSQL): the build fixed its
instant, then waited while the pending revocations were delivered; opt-outs recorded meanwhile were
neither in its consent snapshot (they came after its instant) nor held back (its mark was read after
them), a worker delivered them, and the build's diff re-inserted the rows the worker had just
deleted. The mark is now read before the instant, and a build holds back every intent recorded
after it or delivered to the agreement after the release the build diffs against (two servers'
event intents may commit out of id order on PostgreSQL). The race itself needs several processes
and load: tests/revocation/test_revocation_processes.py reproduced it; this pins the rule.
"""

from __future__ import annotations

import pytest
from revocation_world import LUMEN, heavy_users, released_posts_of

from datalease.revocation.worker import process_pending
from datalease.services.events import submit_events
from datalease.store.releases import latest_release
from datalease.store.revocation import intents_late_for, last_intent_id
from datalease.workspace import Workspace

pytestmark = pytest.mark.postgresql_homes


def test_an_intent_delivered_after_the_diffed_release_is_held_back(home: Workspace) -> None:
    """An event whose id is at or below the mark, delivered after the release a build diffs
    against, is held back; once the build diffs against that delivery's release it is not."""
    ws = home
    person = heavy_users(ws, LUMEN, 1)[0]
    post = released_posts_of(ws, LUMEN, person)[0]
    with ws.session() as session:
        before = latest_release(session, LUMEN)
    assert before is not None
    submit_events(ws, [{"type": "post_delete", "user_id": person, "post_id": post}])
    with ws.session() as session:
        mark = last_intent_id(session)
    assert process_pending(ws).intents == 1
    with ws.session() as session:
        after = latest_release(session, LUMEN)
        assert after is not None and after.release_id > before.release_id
        late = intents_late_for(session, LUMEN, after_id=mark, after_release=before.release_id)
        settled = intents_late_for(session, LUMEN, after_id=mark, after_release=after.release_id)
        recorded_later = intents_late_for(session, LUMEN, after_id=mark - 1, after_release=after.release_id)
    assert [(i.intent_id, i.post_id) for i in late] == [(mark, post)]
    assert settled == []
    assert [i.intent_id for i in recorded_later] == [mark]
