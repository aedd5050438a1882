"""`datalease demo` is safe to run again, and (BUG) must not depend on today's date."""

from __future__ import annotations

from pathlib import Path

from cli_harness import Demo, count, expect, rows, run

from datalease.policy.vocabulary import MASTER_KEY

STORED = {
    "partners": "SELECT name, display_name, created_at FROM partners ORDER BY name",
    "agreements": "SELECT agreement_id, partner, status, sha256, created_at FROM agreements ORDER BY agreement_id",
    "policy_revisions": "SELECT * FROM policy_revisions ORDER BY id",
    "consent_events": "SELECT seq, user_id, key, value, at, hash FROM consent_events ORDER BY seq",
}


def test_demo_twice_is_idempotent(demo: Demo, home: Path) -> None:
    before = {name: rows(home, sql) for name, sql in STORED.items()}
    releases = count(home, "releases")
    assert len(before["partners"]) == 2 and len(before["agreements"]) == 2
    assert any(key == MASTER_KEY for _seq, _user, key, *_ in before["consent_events"])

    again = expect(run("demo", "--users", "120", "--no-serve", home=home), 0)
    assert "Traceback" not in again.err
    assert "ingested users: 120 accepted, 0 rejected" in again.out_lines
    curated = next(line for line in again.out_lines if line.startswith("curated posts:"))
    assert curated.startswith("curated posts: 0 new or changed, ")
    assert {name: rows(home, sql) for name, sql in STORED.items()} == before
    # each run releases each active agreement once more, as a new (incremental) version
    assert count(home, "releases") == releases + 2
    assert count(home, "releases", "full_build = 0") == 2

    verified = expect(run("consent", "verify", home=home), 0)
    assert verified.out_lines == [f"consent ledger intact: {len(before['consent_events'])} events verified"]


FAKE_CLOCK = """\
import os
from datetime import UTC, datetime

if os.environ.get("DATALEASE_TEST_NOW"):
    import datalease.timeparse as timeparse

    _now = datetime.fromisoformat(os.environ["DATALEASE_TEST_NOW"]).replace(tzinfo=UTC)
    timeparse.utc_now = lambda: _now  # before any datalease module binds it with `from … import`
"""


def test_demo_still_works_after_an_example_agreement_ends(tmp_path: Path) -> None:
    (tmp_path / "clock").mkdir()
    (tmp_path / "clock" / "sitecustomize.py").write_text(FAKE_CLOCK, encoding="utf-8")
    clock = {"PYTHONPATH": str(tmp_path / "clock"), "DATALEASE_TEST_NOW": "2027-01-15T12:00:00"}
    result = run("demo", "--users", "30", "--no-serve", home=tmp_path / "home", env=clock)
    assert "error:" not in result.err, result.describe()
    expect(result, 0)
