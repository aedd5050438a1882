"""Differences between two policies, and the guard against rewriting versions already in force."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files

from datalease.policy.diff import describe_rule, diff_policies, retroactive_changes
from datalease.policy.load import load_policy
from datalease.policy.model import Policy

X_TEXT = files("datalease.examples").joinpath("x-2024.yaml").read_text(encoding="utf-8")
X = load_policy(X_TEXT, "x-2024.yaml")
NOW = datetime(2025, 6, 1, tzinfo=UTC)  # both X versions are in force, 2026-01 is not

NEXT_VERSION = """  - id: "2026-01"
    effective_from: 2026-01-01
    rules:
      - region: "*"
        mechanism: opt_in
"""


def edited(old: str, new: str, text: str = X_TEXT) -> Policy:
    assert old in text, old
    return load_policy(text.replace(old, new, 1))


def with_next_version() -> Policy:
    return load_policy(X_TEXT + NEXT_VERSION)


# --- diff_policies --------------------------------------------------------------------------------


def test_policy_against_itself_is_empty() -> None:
    assert diff_policies(X, X) == []
    assert diff_policies(X, load_policy(X_TEXT)) == []


def test_notes_comments_and_line_numbers_are_not_changes() -> None:
    moved = load_policy("# a comment that moves every line\n\n" + X_TEXT.replace("first-party", "1st-party"))
    assert diff_policies(X, moved) == []


def test_adding_a_version() -> None:
    assert diff_policies(X, with_next_version()) == ["version 2026-01: + effective 2026-01-01, 1 rules"]


def test_removing_a_version() -> None:
    assert diff_policies(with_next_version(), X) == ["version 2026-01: - removed"]


def test_changing_a_rules_mechanism() -> None:
    new = edited(
        "categories: [bookmarks]\n        mechanism: opt_in",
        "categories: [bookmarks]\n        mechanism: excluded",
    )
    assert diff_policies(X, new) == [
        "version 2024-11 rule: + every region · bookmarks · every purpose → excluded",
        "version 2024-11 rule: - every region · bookmarks · every purpose → opt_in",
    ]


def test_adding_a_country_to_a_region() -> None:
    assert diff_policies(X, edited("US: [US]", "US: [US, PR]")) == ["region US: + PR"]


def test_adding_and_removing_a_region() -> None:
    new = edited("  CH: [CH]\n", "  CA: [CA]\n")
    assert diff_policies(X, new) == ["region: + CA", "region: - CH"]


def test_changing_minimum_age() -> None:
    assert diff_policies(X, edited("minimum_age: 18", "minimum_age: 16")) == [
        "hard_exclusions.minimum_age: 18 → 16"
    ]


def test_changing_effective_from() -> None:
    new = edited("effective_from: 2024-11-15", "effective_from: 2024-11-16")
    assert diff_policies(X, new) == ["version 2024-11: effective_from 2024-11-15 → 2024-11-16"]


def test_renaming_the_policy() -> None:
    assert diff_policies(X, edited("policy: x-platform", "policy: x-corp")) == ["policy: x-platform → x-corp"]


def test_describe_rule_with_a_window() -> None:
    linkedin_like = edited(
        "      - region: EEA\n        mechanism: excluded",
        "      - region: EEA\n        mechanism: excluded\n        until: 2025-11-03",
    )
    assert (
        describe_rule(linkedin_like.versions[1].rules[2])
        == "EEA · every category · every purpose → excluded [… → 2025-11-03)"
    )


def test_moving_a_window_within_a_day_is_a_change() -> None:
    before = edited(
        "      - region: EEA\n        mechanism: excluded",
        "      - region: EEA\n        mechanism: excluded\n        until: 2025-11-03T00:00:00Z",
    )
    after = edited(
        "      - region: EEA\n        mechanism: excluded",
        "      - region: EEA\n        mechanism: excluded\n        until: 2025-11-03T12:00:00Z",
    )
    assert diff_policies(before, after) != []
    assert retroactive_changes(before, after, NOW) == ["version 2024-11 is in force and would be changed"]


def test_reordering_names_in_a_rule_is_not_a_change() -> None:
    new = edited(
        "categories: [posts, likes, reposts, profile]", "categories: [profile, reposts, likes, posts]"
    )
    assert diff_policies(X, new) == []
    assert retroactive_changes(X, new, NOW) == []


# --- retroactive_changes --------------------------------------------------------------------------


def test_nothing_retroactive_in_the_same_policy() -> None:
    assert retroactive_changes(X, X, NOW) == []


def test_changing_a_version_in_force_is_flagged() -> None:
    new = edited(
        "      - region: EEA\n        mechanism: excluded", "      - region: EEA\n        mechanism: opt_in"
    )
    assert retroactive_changes(X, new, NOW) == ["version 2024-11 is in force and would be changed"]


def test_moving_a_version_in_force_is_flagged() -> None:
    new = edited("effective_from: 2023-09-29", "effective_from: 2023-09-01")
    assert retroactive_changes(X, new, NOW) == ["version 2023-09 is in force and would be changed"]


def test_removing_a_version_in_force_is_flagged() -> None:
    start = X_TEXT.index('  - id: "2024-11"')
    truncated = load_policy(X_TEXT[:start])
    assert retroactive_changes(X, truncated, NOW) == ["version 2024-11 is in force and would be removed"]


def test_future_versions_may_change() -> None:
    stored = with_next_version()
    changed = load_policy(X_TEXT + NEXT_VERSION.replace("opt_in", "excluded"))
    assert retroactive_changes(stored, changed, NOW) == []
    assert retroactive_changes(stored, X, NOW) == []
    assert retroactive_changes(X, stored, NOW) == []
    # ...but not once they are in force.
    assert retroactive_changes(stored, changed, datetime(2026, 2, 1, tzinfo=UTC)) == [
        "version 2026-01 is in force and would be changed"
    ]


def test_only_versions_in_force_are_checked() -> None:
    new = edited(
        "      - region: EEA\n        mechanism: excluded", "      - region: EEA\n        mechanism: opt_in"
    )
    assert retroactive_changes(X, new, datetime(2024, 1, 1, tzinfo=UTC)) == []


def test_back_dated_new_version_is_flagged() -> None:
    back_dated = """  - id: "2024-06"
    effective_from: 2024-06-01
    rules:
      - region: "*"
        mechanism: opt_out
"""
    # Without notice periods (with them, the new version would need a notice of its own).
    without_periods = X_TEXT.replace('notice_periods:\n  "*": 30\n', "")
    new = load_policy(without_periods.replace('  - id: "2024-11"', back_dated + '  - id: "2024-11"'))
    assert [v.version_id for v in new.versions] == ["2023-09", "2024-06", "2024-11"]
    assert retroactive_changes(X, new, NOW) != []
