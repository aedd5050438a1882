"""`datalease consent set | show | verify` on a copy of the demo platform."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from cli_harness import Demo, count, expect, only_error_line, rows, run, tree

from datalease.policy.load import load_policy

SHARE = "share.<category> with category one of posts, likes, reposts, bookmarks, profile"
PURPOSE = (
    "purpose.<purpose> with purpose one of train_ai_system, train_ai_system.generative, "
    "train_ai_system.non_generative, third_party_sharing, third_party_sharing.independent"
)
FAMILIES = (
    "one of share_with_partners, share.<category>, purpose.<purpose>, block_partner.<partner>, "
    "post.<post_id>.ai_training, signal.<signal>"
)


def ledger_state(home: Path) -> list[tuple[object, ...]]:
    return rows(home, "SELECT seq, user_id, key, value, at, hash FROM consent_events ORDER BY seq")


@pytest.mark.parametrize(
    ("user", "key", "value", "message"),
    [
        ("US", "share.dms", "false", f"KEY 'share.dms': expected {SHARE}"),
        ("US", "purpose.ads", "false", f"KEY 'purpose.ads': expected {PURPOSE}"),
        ("US", "share_with_partner", "false", f"KEY 'share_with_partner': expected {FAMILIES}"),
        (
            "US",
            "share_with_partners",
            "maybe",
            "VALUE 'maybe': expected true/false (also on/off, yes/no, 1/0)",
        ),
        (
            "99999",
            "share_with_partners",
            "false",
            "user '99999': no such user in the platform lake (give a numeric user_id or @handle)",
        ),
        (
            "@nobody",
            "share_with_partners",
            "false",
            "user '@nobody': no such user in the platform lake (give a numeric user_id or @handle)",
        ),
    ],
    ids=["share.dms", "purpose.ads", "share_with_partner", "maybe", "unknown-id", "unknown-handle"],
)
def test_set_refuses_bad_input_and_records_nothing(
    demo: Demo, home: Path, user: str, key: str, value: str, message: str
) -> None:
    user = str(demo.us_user) if user == "US" else user
    before = ledger_state(home)
    result = run("consent", "set", user, key, value, home=home)
    assert only_error_line(result) == message
    assert ledger_state(home) == before


def test_set_unknown_key_leaves_show_unchanged(demo: Demo, home: Path) -> None:
    user = str(demo.us_user)
    before = expect(run("consent", "show", user, "--at", "2026-01-01", "--json", home=home), 0)
    only_error_line(run("consent", "set", user, "share.dms", "false", home=home))
    after = expect(run("consent", "show", user, "--at", "2026-01-01", "--json", home=home), 0)
    assert (
        after.json()
        == before.json()
        == {"user_id": demo.us_user, "at": "2026-01-01T00:00:00+00:00", "settings": []}
    )


def test_back_dated_setting_shows_from_its_instant(demo: Demo, home: Path) -> None:
    user = demo.us_user
    seq = count(home, "consent_events") + 1
    recorded = expect(
        run(
            "consent",
            "set",
            f"@{demo.user(user)['handle']}",
            "share.posts",
            "off",
            "--at",
            "2025-06-01",
            home=home,
        ),
        0,
    )
    assert recorded.out_lines == [
        f"recorded #{seq}: user {user} share.posts=false at 2025-06-01T00:00:00+00:00"
    ]
    before = expect(
        run("consent", "show", str(user), "--at", "2025-05-31T23:59:59Z", "--json", home=home),
        0,
    )
    after = expect(run("consent", "show", str(user), "--at", "2025-06-01", "--json", home=home), 0)
    assert before.json()["settings"] == []
    assert after.json()["settings"] == [
        {
            "key": "share.posts",
            "value": False,
            "at": "2025-06-01T00:00:00+00:00",
            "source": "user",
            "actor": f"user:{user}",
            "seq": seq,
            "after_notice": "2024-11 (de, en)",  # issue 15: none recorded, so the latest published
            "notice_sha256": None,
            "notice_locale": None,
            "surface": None,
        }
    ]


def test_verify_names_the_first_tampered_event(home: Path) -> None:
    total = count(home, "consent_events")
    assert total >= 6
    intact = expect(run("consent", "verify", home=home), 0)
    assert intact.out_lines == [f"consent ledger intact: {total} events verified"]

    with closing(sqlite3.connect(home / "datalease.db")) as conn, conn:
        triggers = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
        assert "consent_events_no_update" in triggers
        conn.execute("DROP TRIGGER consent_events_no_update")
        conn.execute("UPDATE consent_events SET value = NOT value WHERE seq IN (5, 6)")

    broken = run("consent", "verify", home=home)
    assert only_error_line(broken) == (
        "consent ledger is NOT intact after 4 events: event 5 was altered: its stored content "
        "(user, key, value, times, source, actor, notice shown or surface) no longer matches its hash"
    )


def test_release_build_refuses_a_consent_current_edited_behind_the_ledgers_back(
    demo: Demo, home: Path
) -> None:
    """The bug of issue 11: one UPDATE of consent_current (triggers off) would make the next full
    build share an opted-out user's posts while verify, show and decide still say "opted out"."""
    user = demo.us_user
    expect(run("consent", "set", str(user), "share_with_partners", "false", home=home), 0)
    expect(run("revoke", "process", home=home), 0)
    releases, shares = count(home, "releases"), tree(home / "shares")
    with closing(sqlite3.connect(home / "datalease.db")) as conn, conn:
        conn.execute("DROP TRIGGER IF EXISTS consent_current_update_mirrors_events")
        conn.execute(
            "UPDATE consent_current SET value = 1 WHERE user_id = ? AND key = 'share_with_partners'", (user,)
        )

    refused = only_error_line(run("release", "build", "lumen-genai-2025", "--full", home=home))
    assert refused.startswith("the consent state does not match the consent ledger: the "), refused
    assert "rows read from consent_current give digest" in refused
    assert refused.endswith("; run `datalease consent verify`")
    assert count(home, "releases") == releases
    assert tree(home / "shares") == shares

    total = count(home, "consent_events")
    assert only_error_line(run("consent", "verify", home=home)) == (
        f"consent state is NOT intact ({total} events verified): consent_current row of user {user} "
        f"share_with_partners does not match its latest event #{total}: value true instead of false"
    )
    shown = expect(run("consent", "show", str(user), "--json", home=home), 0).json()
    assert {s["key"]: s["value"] for s in shown["settings"]} == {"share_with_partners": False}


# --- issue 15: `consent import` records the notice shown; show and by-notice use it ----------------


def x_notice(home: Path) -> str:
    """The sha256 of notice 2024-11 of the home's active policy."""
    ((text,),) = rows(home, "SELECT source_text FROM policy_revisions ORDER BY id DESC LIMIT 1")
    version = next(v for v in load_policy(str(text)).versions if v.version_id == "2024-11")
    assert version.notice is not None
    return version.notice.sha256


def test_import_records_surface_and_notice_shown(demo: Demo, home: Path) -> None:
    user = demo.us_user
    sha = x_notice(home)
    by_notice = expect(run("consent", "by-notice", "--json", home=home), 0).json()
    before = {n["notice"]: n["choices"] for n in by_notice}
    lines = [
        {"user_id": user, "key": "share.reposts", "value": False, "at": "2019-03-01T00:00:00Z"},
        {
            "user_id": user,
            "key": "share.likes",
            "value": True,
            "at": "2019-03-02T00:00:00Z",
            "notice_sha256": sha,
            "locale": "de",
            "event_id": "0190e1c2-7a4b-7c3d-8e5f-0123456789ab",
        },
    ]
    (home / "history.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    done = expect(run("consent", "import", str(home / "history.jsonl"), home=home), 0)
    assert done.out_lines[0].startswith("imported 2 events (#")
    again = expect(run("consent", "import", str(home / "history.jsonl"), home=home), 0)
    # the line with an event_id is not recorded twice; the one without is a new event
    assert again.out_lines[0].startswith("imported 1 events (#") and again.out_lines[0].endswith(
        "; 1 already recorded"
    )
    shown = {
        s["key"]: s
        for s in expect(
            run("consent", "show", str(user), "--at", "2019-03-03", "--json", home=home), 0
        ).json()["settings"]
    }
    likes, reposts = shown["share.likes"], shown["share.reposts"]
    assert (likes["source"], likes["surface"], likes["notice_sha256"], likes["notice_locale"]) == (
        "import",
        "import",
        sha,
        "de",
    )
    # recorded, not inferred: in 2019 no notice had been published yet
    assert likes["after_notice"] == "2024-11 (de)" and reposts["after_notice"] is None
    assert (reposts["surface"], reposts["notice_sha256"]) == ("import", None)
    after = {n["notice"]: n for n in expect(run("consent", "by-notice", "--json", home=home), 0).json()}
    # counted by the recorded notice (2024-11), not by its time (2019: before any notice)
    assert after["2024-11"]["choices"] == before.get("2024-11", 0) + 1
    expect(run("consent", "verify", home=home), 0)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ({"key": "share.likes", "value": True}, ":2: user_id: missing"),
        (
            {"user_id": 1, "key": "share.likes", "value": True, "notice_sha256": "ab" * 32},
            ":2: notice_sha256: ",
        ),
        (
            {"user_id": 1, "key": "share.likes", "value": True, "notice_sha256": "SHA", "locale": "fr"},
            ":2: notice_sha256",
        ),
        ({"user_id": 1, "key": "share.likes", "value": True, "NOTICE": 1}, ":2: NOTICE: unknown field"),
        ({"user_id": 1, "key": "share.dms", "value": True}, ":2: key: "),
    ],
)
def test_import_refuses_a_bad_line_naming_it_and_records_nothing(
    home: Path, line: dict[str, object], says: str
) -> None:
    good = {"user_id": 1, "key": "share.posts", "value": False}
    (home / "bad.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
    before = ledger_state(home)
    failed = run("consent", "import", str(home / "bad.jsonl"), home=home)
    message = only_error_line(failed)
    assert says in message and message.endswith("nothing recorded"), message
    assert ledger_state(home) == before


def test_import_refuses_a_locale_the_notice_lacks(home: Path) -> None:
    sha = x_notice(home)
    (home / "fr.jsonl").write_text(
        json.dumps({"user_id": 1, "key": "share.posts", "value": False, "notice_sha256": sha, "locale": "fr"})
    )
    message = only_error_line(run("consent", "import", str(home / "fr.jsonl"), home=home))
    assert ":1: locale: 'fr': notice 2024-11 has no text in that locale; expected one of de, en" in message
