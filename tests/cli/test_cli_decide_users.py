"""`datalease decide` and `datalease users list` on the demo platform."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import Demo, count, expect, only_error_line, run

DECIDE = ("decide", "--category", "posts", "--purpose", "train_ai_system.generative", "--json")
CATEGORIES = "posts, likes, reposts, bookmarks, profile"
PURPOSES = (
    "train_ai_system, train_ai_system.generative, train_ai_system.non_generative, "
    "third_party_sharing, third_party_sharing.independent"
)


def decide(home: Path, user: int, *extra: str) -> dict[str, object]:
    """The decision; the exit code of a refusal (1, documented) is checked by its own test below."""
    result = run(*DECIDE, "--user", str(user), *extra, home=home)
    assert result.err == "", result.describe()
    decision: dict[str, object] = result.json()
    if decision["allowed"]:
        expect(result, 0)
    else:
        assert result.code in (0, 1), result.describe()
    return decision


def test_us_adult_without_settings_is_allowed(demo: Demo) -> None:
    decision = decide(demo.home, demo.us_user, "--at", "2026-06-01")
    assert decision == {
        "user_id": demo.us_user,
        "category": "posts",
        "at": "2026-06-01T00:00:00+00:00",
        "allowed": True,
        "reasons": [],
        "version_id": "2024-11",
        "region": "US",
        "mechanisms": {"train_ai_system.generative": "opt_out"},
    }


def test_eea_user_is_excluded_by_region(demo: Demo) -> None:
    decision = decide(demo.home, demo.eea_user)
    assert decision["allowed"] is False
    assert decision["region"] == "EEA"
    assert decision["reasons"] == ["region_excluded"]
    assert decision["mechanisms"] == {"train_ai_system.generative": "excluded"}


def test_opting_out_turns_allowed_into_opted_out(demo: Demo, home: Path) -> None:
    user = demo.us_user
    assert decide(home, user)["allowed"] is True
    expect(run("consent", "set", str(user), "share_with_partners", "false", home=home), 0)
    decision = decide(home, user)
    assert decision["allowed"] is False
    assert decision["reasons"] == ["opted_out"]
    assert decision["mechanisms"] == {"train_ai_system.generative": "opt_out"}


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_decide_exits_1_when_not_allowed(demo: Demo, as_json: bool) -> None:
    args = DECIDE if as_json else DECIDE[:-1]
    result = run(*args, "--user", str(demo.eea_user), home=demo.home)
    if as_json:
        assert result.json()["reasons"] == ["region_excluded"]
    else:
        assert result.out_lines == [
            "not allowed — policy version 2024-11, region EEA",
            "  reason: region_excluded",
            "  train_ai_system.generative: excluded",
        ]
    expect(result, 1)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--category", "dms", f"--category 'dms': expected one of {CATEGORIES}"),
        ("--purpose", "ads", f"--purpose 'ads': expected one of {PURPOSES}"),
    ],
    ids=["category", "purpose"],
)
def test_unknown_category_or_purpose_names_the_option(
    demo: Demo, option: str, value: str, message: str
) -> None:
    args = {"--category": "posts", "--purpose": "train_ai_system.generative", option: value}
    events = count(demo.home, "consent_events")
    result = run(
        "decide",
        "--user",
        str(demo.us_user),
        *(x for kv in args.items() for x in kv),
        home=demo.home,
    )
    assert only_error_line(result) == message
    assert count(demo.home, "consent_events") == events


def test_users_list_filters_by_region(demo: Demo) -> None:
    result = expect(run("users", "list", "--region", "US", "--limit", "0", "--json", home=demo.home), 0)
    listed = result.json()
    assert listed, "the demo has US users"
    assert {u["region"] for u in listed} == {"US"}
    assert {u["country"] for u in listed} == {"US"}
    assert [u["user_id"] for u in listed] == [u["user_id"] for u in demo.users if u["country"] == "US"]
    assert set(listed[0]) == {
        "user_id",
        "handle",
        "country",
        "birth_date",
        "account_state",
        "created_at",
        "region",
    }


def test_users_list_unknown_region_is_refused(demo: Demo) -> None:
    result = run("users", "list", "--region", "Mars", home=demo.home)
    assert only_error_line(result) == "--region 'Mars': expected one of EEA, UK, CH, US, *"
