"""`datalease release build | list | show` on the demo's two example agreements."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cli_harness import Demo, count, expect, only_error_line, run, tree
from deltalake import DeltaTable

RELEASE_LINE = re.compile(
    r"release (?P<id>\d+) of (?P<agreement>[a-z0-9-]+): (?P<kind>full build \(.+\)|incremental build "
    r"\((?P<changed>\d+) changed inputs\)) in \d+ ms, policy (?P<policy>\S+), consent watermark #(?P<mark>\d+)"
)


def latest(releases: list[dict[str, Any]], agreement: str) -> dict[str, Any]:
    return max((r for r in releases if r["agreement_id"] == agreement), key=lambda r: r["release_id"])


def test_build_of_unknown_agreement_is_one_line(home: Path) -> None:
    releases, shares = count(home, "releases"), tree(home / "shares")
    result = run("release", "build", "no-such-agreement", home=home)
    assert only_error_line(result) == "no agreement 'no-such-agreement'; see `datalease agreement list`"
    assert count(home, "releases") == releases
    assert tree(home / "shares") == shares


def test_demo_released_both_example_agreements(demo: Demo) -> None:
    by_agreement = {r["agreement_id"]: r for r in demo.releases}
    assert set(by_agreement) == {"lumen-genai-2025", "sentimetrics-us-2025"}
    # Each build also writes the share's ledger_head table: one row, the consent head it was built from.
    expected_tables = {
        "lumen-genai-2025": ["ledger_head", "posts", "reposts"],
        "sentimetrics-us-2025": ["ledger_head", "likes", "posts"],
    }
    events = count(demo.home, "consent_events")
    for agreement, release in by_agreement.items():
        assert release["full_build"] is True
        assert release["policy_version"] == "2024-11"
        assert release["consent_watermark"] == events
        assert release["engine"] == "duckdb"
        tables = sorted(release["tables"], key=lambda t: t["category"])
        assert [t["category"] for t in tables] == expected_tables[agreement]
        for table in tables:
            assert table["table_version"] == 0
            assert table["rows_total"] == table["rows_added"] > 0
            assert table["rows_removed"] == 0
        assert sum(release["excluded"].values()) > 0
        [head] = (
            DeltaTable(str(demo.home / "shares" / agreement / "ledger_head")).to_pyarrow_table().to_pylist()
        )
        assert (head["release_id"], head["kind"]) == (release["release_id"], "build")
        assert (head["consent_seq"], head["consent_hash"]) == (events, release["consent_head_hash"])
        assert json.loads(head["table_versions"]) == dict.fromkeys(expected_tables[agreement][1:], 0)


def test_opt_out_is_revoked_then_the_next_build_is_incremental(demo: Demo, home: Path) -> None:
    agreement = "lumen-genai-2025"
    previous = latest(demo.releases, agreement)
    before = {t["category"]: t for t in previous["tables"]}
    user = demo.us_user

    expect(run("consent", "set", str(user), "share_with_partners", "false", home=home), 0)
    processed = expect(run("revoke", "process", home=home), 0)
    assert processed.out.startswith("1 intent(s) processed:"), processed.describe()
    releases = expect(run("release", "list", "--json", home=home), 0).json()
    revocation = latest(releases, agreement)
    assert revocation["kind"] == "revocation"
    assert revocation["release_id"] > max(r["release_id"] for r in demo.releases)
    # A revocation keeps the diff base of the build before it: the next build still sees the opt-out.
    assert revocation["consent_watermark"] == previous["consent_watermark"]
    after = {t["category"]: t for t in revocation["tables"]}
    assert set(after) == {"posts", "reposts", "forget", "ledger_head"}
    assert set(before) == {"posts", "reposts", "ledger_head"}
    assert after["forget"]["rows_added"] == 1
    # A revocation reads no new consent state: the ledger head is pinned as the build left it.
    assert after["ledger_head"] == {**before["ledger_head"], "rows_added": 0, "files_added": 0}
    for category in ("posts", "reposts"):
        table = after[category]
        assert table["table_version"] == before[category]["table_version"] + 1
        assert table["rows_added"] == 0
        assert table["rows_total"] == before[category]["rows_total"] - table["rows_removed"]
    # every public, live post of the user had been released, and now every one of them is removed
    assert after["posts"]["rows_removed"] == demo.us_user_posts

    built = expect(run("release", "build", agreement, home=home), 0)
    header = RELEASE_LINE.fullmatch(built.out_lines[0])
    assert header is not None, built.describe()
    assert header["agreement"] == agreement
    assert header["kind"].startswith("incremental build"), built.describe()
    assert int(header["changed"]) > 0
    assert header["policy"] == "2024-11"
    assert int(header["mark"]) == previous["consent_watermark"] + 1
    shown = expect(run("release", "show", header["id"], "--json", home=home), 0).json()
    assert shown["kind"] == "build" and shown["full_build"] is False
    tables = {t["category"]: t for t in shown["tables"]}
    head = tables.pop("ledger_head")  # every build adds its row; the data tables are unchanged
    assert (head["table_version"], head["rows_total"], head["rows_added"]) == (
        after["ledger_head"]["table_version"] + 1,
        2,
        1,
    )
    for table in tables.values():
        assert table["rows_added"] == table["rows_removed"] == 0
        assert table["table_version"] == after[table["category"]]["table_version"]
    revocations = sum(r["kind"] == "revocation" for r in releases)
    assert 1 <= revocations <= 2  # one per agreement that had received the user's rows
    assert count(home, "releases") == len(demo.releases) + revocations + 1


def test_release_show_unknown_id(demo: Demo) -> None:
    result = run("release", "show", "999", "--json", home=demo.home)
    assert only_error_line(result) == "release 999: no such release (see `datalease release list`)"
