"""The settings page's model: defaults per region and mechanism, the scheduled change note, and which
settings a submitted form changes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datalease.config import Settings
from datalease.services.demo import example_policy_text
from datalease.store.licensing import add_partner
from datalease.store.policy_revisions import save_policy_revision
from datalease.web.views import changed_settings, settings_view
from datalease.workspace import Workspace

BEFORE_OPT_OUT = datetime(2024, 11, 1, tzinfo=UTC)
AFTER = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(Settings(home=tmp_path / "home"))
    text = example_policy_text()
    with workspace.session() as session, session.begin():
        save_policy_revision(session, "x", text, hashlib.sha256(text.encode()).hexdigest(), "test")
        add_partner(session, "lumen-labs", "Lumen Labs")
    return workspace


def test_before_the_opt_out_policy_the_page_announces_it(ws: Workspace) -> None:
    view = settings_view(ws, ws.require_policy(), 7, "someone", "US", BEFORE_OPT_OUT)
    assert view.scheduled == "From 15 Nov 2024 your posts will be shared unless you opt out."
    assert view.mechanism == "excluded" and view.master.disabled


def test_defaults_follow_the_mechanism_of_the_region(ws: Workspace) -> None:
    view = settings_view(ws, ws.require_policy(), 7, "someone", "US", AFTER)
    assert view.scheduled is None and view.mechanism == "opt_out"
    assert view.master.on and not view.master.explicit
    by_key = {t.key: t for t in view.categories}
    assert by_key["share.posts"].on and not by_key["share.bookmarks"].on  # bookmarks are opt-in
    assert [t.key for t in view.partners] == ["block_partner.lumen-labs"] and not view.partners[0].on
    eea = settings_view(ws, ws.require_policy(), 8, "other", "FR", AFTER)
    assert eea.mechanism == "excluded" and not eea.master.on


def test_only_changed_settings_are_recorded(ws: Workspace) -> None:
    policy = ws.require_policy()
    view = settings_view(ws, policy, 7, "someone", "US", AFTER)
    on_now = {t.key for t in [view.master, *view.categories, view.purpose, *view.partners] if t.on}
    assert changed_settings(view, on_now) == {}
    changed = changed_settings(view, (on_now - {"share_with_partners"}) | {"block_partner.lumen-labs"})
    assert changed == {"share_with_partners": False, "block_partner.lumen-labs": True}
    ws.ledger.record(7, "share_with_partners", False, at=AFTER)
    after = settings_view(ws, policy, 7, "someone", "US", AFTER)
    assert not after.master.on and after.master.explicit
