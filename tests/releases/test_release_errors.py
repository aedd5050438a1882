"""Builds that must not happen: each says why, in one line, and writes nothing.

"Nothing" means no ledger row and no new version of any table of the share (and no share at all
for an agreement that never had a release).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from release_oracle import release_count, share_table
from release_world import LUMEN, SENTIMETRICS, T0, run_cli, workspace

from datalease.errors import UserError
from datalease.licensing.registry import set_agreement_status
from datalease.releases import delta
from datalease.services.releases import build_release
from datalease.workspace import Workspace


def share_versions(ws: Workspace, agreement_id: str) -> dict[str, int | None]:
    folder = ws.settings.resolved_home / "shares" / agreement_id
    if not folder.exists():
        return {}
    return {
        p.name: delta.table_version(share_table(ws, agreement_id, p.name))
        for p in folder.iterdir()
        if p.is_dir()
    }


def assert_refused(ws: Workspace, agreement_id: str, at: datetime | None, message: str) -> None:
    releases, versions = release_count(ws), share_versions(ws, agreement_id)
    with pytest.raises(UserError) as caught:
        build_release(ws, agreement_id, at=at)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert release_count(ws) == releases
    assert share_versions(ws, agreement_id) == versions


def suspend(ws: Workspace, agreement_id: str) -> None:
    policy = ws.require_policy()
    with ws.session() as session, session.begin():
        set_agreement_status(session, agreement_id, "suspended", policy=policy)


def test_an_unknown_agreement_is_refused(world: Workspace) -> None:
    assert_refused(world, "no-such-deal", T0, "no agreement 'no-such-deal'; see `datalease agreement list`")
    assert not (world.settings.resolved_home / "shares" / "no-such-deal").exists()


def test_a_suspended_agreement_is_refused(world: Workspace) -> None:
    build_release(world, LUMEN, at=T0)
    suspend(world, LUMEN)
    assert_refused(
        world,
        LUMEN,
        T0 + timedelta(days=1),
        f"agreement {LUMEN} is suspended: only active agreements are released",
    )
    assert share_versions(world, LUMEN) == {"posts": 0, "reposts": 0, "ledger_head": 0}


def test_a_time_outside_the_term_is_refused(world: Workspace) -> None:
    # sentimetrics-us: term 2026-03-01 to 2027-02-28 (the last day), i.e. until 2027-03-01T00:00Z.
    for at in (datetime(2026, 2, 28, 23, 59, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)):
        with pytest.raises(UserError, match=f"agreement {SENTIMETRICS}: .* is outside its term"):
            build_release(world, SENTIMETRICS, at=at)
    assert release_count(world) == 0
    assert share_versions(world, SENTIMETRICS) == {}
    # The first and the last instant of the term are in it.
    assert build_release(world, SENTIMETRICS, at=datetime(2026, 3, 1, tzinfo=UTC)).release.release_id == 1
    last = build_release(world, SENTIMETRICS, at=datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC))
    assert last.release.release_id == 2


def test_the_term_in_the_message_is_the_one_in_the_contract(world: Workspace) -> None:
    """lumen-genai says `end: 2026-12-31`: the message names that last day, not the exclusive end."""
    with pytest.raises(UserError) as caught:
        build_release(world, LUMEN, at=datetime(2027, 1, 1, tzinfo=UTC))
    assert "(2025-01-01 to 2026-12-31)" in str(caught.value)


def test_no_policy_applied_is_refused(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "home")
    ws.init()
    message = "no policy has been applied yet: run `datalease policy apply FILE` first"
    assert_refused(ws, LUMEN, T0, message)
    assert not (tmp_path / "home" / "shares").exists()
    ws.engine.dispose()


# --- the same through the command line ------------------------------------------------------------


def assert_cli_refused(home: Path, *args: str, message: str) -> None:
    """Exit code not 0, and exactly one line on stderr: `error: MESSAGE`."""
    done = run_cli(home, "release", "build", *args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0] == f"error: {message}", done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_the_cli_refuses_in_one_line_and_writes_nothing(world: Workspace) -> None:
    home = world.settings.resolved_home
    build_release(world, LUMEN, at=T0)
    assert_cli_refused(
        home, "no-such-deal", message="no agreement 'no-such-deal'; see `datalease agreement list`"
    )
    assert_cli_refused(
        home,
        SENTIMETRICS,
        "--at",
        "2026-01-15",
        message=f"agreement {SENTIMETRICS}: 2026-01-15T00:00:00+00:00 is outside its term (2026-03-01 to 2027-02-28)",
    )
    assert_cli_refused(
        home,
        LUMEN,
        "--at",
        "next tuesday",
        message=(
            "--at: expected an ISO-8601 date or date-time such as 2024-11-15 or 2024-11-15T09:30:00Z, "
            "got 'next tuesday'"
        ),
    )
    suspend(world, LUMEN)
    assert_cli_refused(
        home,
        LUMEN,
        "--at",
        "2026-06-02",
        message=f"agreement {LUMEN} is suspended: only active agreements are released",
    )
    assert release_count(world) == 1
    assert share_versions(world, LUMEN) == {"posts": 0, "reposts": 0, "ledger_head": 0}
    assert share_versions(world, SENTIMETRICS) == {}


def test_the_cli_refuses_without_a_policy(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "home")
    ws.init()
    ws.engine.dispose()
    message = "no policy has been applied yet: run `datalease policy apply FILE` first"
    assert_cli_refused(tmp_path / "home", LUMEN, message=message)
    assert not (tmp_path / "home" / "shares").exists()


def test_the_cli_refuses_in_a_new_home(tmp_path: Path) -> None:
    """A home where nothing was ever done (no store yet): the same one line, no traceback."""
    message = "no policy has been applied yet: run `datalease policy apply FILE` first"
    assert_cli_refused(tmp_path / "new-home", LUMEN, message=message)
