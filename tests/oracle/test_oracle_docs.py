"""The oracle reads the docs as they are written: every decision the docs spell out, decided by the
oracle (never by datalease), gives the documented result."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from docs_oracle import Record, ambiguities, decide, parse_agreement, parse_policy
from inputs import UserRow

X_POLICY = (Path(__file__).resolve().parents[2] / "src/datalease/examples/x-2024.yaml").read_text()
LINKEDIN = (Path(__file__).resolve().parents[1] / "policy/fixtures/linkedin-2025.yaml").read_text()
GENERATIVE = """\
agreement: docs-example
partner: acme
status: active
term: {start: 2020-01-01, end: 2030-12-31}
purposes: [train_ai_system.generative]
categories: [posts, likes, reposts, bookmarks, profile]
fields: {posts: [], likes: [], reposts: [], bookmarks: [], profile: []}
pricing: {model: per_query, amount: "0.01", currency: USD}
deletion_sla_hours: 24
"""


def adult(country: str, born: date | None = date(1990, 5, 5)) -> UserRow:
    return UserRow(1, "u", country, born, "active", datetime(2020, 1, 1, tzinfo=UTC))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# docs/policy.md "Example: X, November 2024": T, owner, category, settings, result
X_TABLE = [
    ("2023-09-28", adult("US"), "posts", {}, ("before_policy_effective",)),
    ("2024-03-01", adult("US"), "posts", {}, ("excluded_by_policy",)),
    ("2025-01-15", adult("US"), "posts", {}, ()),
    ("2025-01-15", adult("US"), "bookmarks", {}, ("opt_in_required",)),
    ("2025-01-15", adult("US"), "bookmarks", {"share.bookmarks": True}, ()),
    ("2025-01-15", adult("DE"), "posts", {"share.posts": True}, ("region_excluded",)),
    ("2025-01-15", adult("US"), "posts", {"share_with_partners": False}, ("opted_out",)),
    ("2025-01-15", adult("US"), "likes", {"share.posts": False}, ()),
    ("2025-01-15", adult("US"), "posts", {"purpose.train_ai_system": False}, ("purpose_not_consented",)),
    ("2025-01-15", adult("US"), "posts", {"block_partner.acme": True}, ("partner_blocked",)),
    ("2025-01-15", adult("US", date(2007, 1, 16)), "posts", {}, ("minor",)),
    ("2025-01-15", adult("BR"), "posts", {}, ()),
]


@pytest.mark.parametrize(("when", "owner", "category", "consent", "reasons"), X_TABLE)
def test_the_x_example_decides_as_the_docs_table_says(
    when: str, owner: UserRow, category: str, consent: dict[str, bool], reasons: tuple[str, ...]
) -> None:
    policy, agreement = parse_policy(X_POLICY), parse_agreement(GENERATIVE)
    record = Record(category, owner, at("2020-06-01"))
    assert decide(policy, record, consent, agreement, at(when)) == reasons


def test_the_linkedin_example_switches_at_midnight_of_the_dated_rules() -> None:
    policy = parse_policy(LINKEDIN)
    agreement = parse_agreement(
        GENERATIVE.replace("bookmarks, profile]", "profile]").replace("bookmarks: [], ", "")
    )
    record = Record("posts", adult("DE"), at("2025-01-01"))
    assert decide(policy, record, {}, agreement, at("2025-11-02T23:59:59")) == ("region_excluded",)
    assert decide(policy, record, {}, agreement, at("2025-11-03T00:00:00")) == ()
    assert decide(policy, record, {"share_with_partners": False}, agreement, at("2025-11-03")) == (
        "opted_out",
    )
    non_generative = parse_agreement(
        GENERATIVE.replace("[train_ai_system.generative]", "[train_ai_system.non_generative]")
    )
    assert "no_rule" in decide(policy, record, {}, non_generative, at("2025-11-03"))


def test_asking_for_a_parent_purpose_must_pass_every_descendant() -> None:
    """LinkedIn names only .generative: asking for train_ai_system also decides .non_generative."""
    policy = parse_policy(LINKEDIN)
    parent = parse_agreement(GENERATIVE.replace("[train_ai_system.generative]", "[train_ai_system]"))
    assert "no_rule" in decide(
        policy, Record("posts", adult("US"), at("2025-01-01")), {}, parent, at("2025-06-01")
    )


def test_age_boundaries_birthday_and_29_february() -> None:
    policy, agreement = parse_policy(X_POLICY), parse_agreement(GENERATIVE)
    born = adult("US", date(2007, 1, 15))  # 18 on 2025-01-15: old enough that day
    assert decide(policy, Record("posts", born, at("2020-06-01")), {}, agreement, at("2025-01-15")) == ()
    leap = adult("US", date(2008, 2, 29))  # 18 on 2026-03-01 (2026 is a common year)
    assert decide(
        policy, Record("posts", leap, at("2020-06-01")), {}, agreement, at("2026-02-28T23:59:59")
    ) == ("minor",)
    assert decide(policy, Record("posts", leap, at("2020-06-01")), {}, agreement, at("2026-03-01")) == ()
    unknown = adult("US", None)
    assert decide(policy, Record("posts", unknown, at("2020-06-01")), {}, agreement, at("2025-01-15")) == (
        "age_unknown",
    )


def test_deleted_after_t_was_live_at_t_and_created_after_t_did_not_exist() -> None:
    policy, agreement = parse_policy(X_POLICY), parse_agreement(GENERATIVE)
    t = at("2025-01-15")
    assert decide(policy, Record("posts", adult("US"), at("2020-06-01"), t), {}, agreement, t) == (
        "content_deleted",
    )
    later = Record("posts", adult("US"), at("2020-06-01"), at("2025-01-15T00:00:01"))
    assert decide(policy, later, {}, agreement, t) == ()
    assert decide(policy, Record("posts", adult("US"), at("2025-01-15T00:00:01")), {}, agreement, t) == (
        "not_yet_created",
    )


def test_agreement_dates_and_regions_read_as_documented() -> None:
    agreement = parse_agreement(
        GENERATIVE.replace(
            "term: {start: 2020-01-01, end: 2030-12-31}", "term: {start: 2025-01-01, end: 2025-01-01}"
        )
        + "regions: {allowed: ['*', US]}\ncontent_window: {from: 2020-01-01, until: 2024-01-01}\n"
    )
    assert agreement.in_term(at("2025-01-01T23:59:59")) and not agreement.in_term(at("2025-01-02"))
    policy = parse_policy(X_POLICY)
    inside = Record("posts", adult("BR"), at("2023-12-31T23:59:59"))
    assert decide(policy, inside, {}, agreement, at("2025-01-01")) == ()
    assert decide(
        policy, Record("posts", adult("GB"), at("2023-01-01")), {}, agreement, at("2025-01-01")
    ) == ("outside_agreement_regions",)
    assert decide(
        policy, Record("posts", adult("US"), at("2024-01-01")), {}, agreement, at("2025-01-01")
    ) == ("outside_content_window",)


def test_equally_specific_overlapping_rules_are_ambiguous() -> None:
    assert not ambiguities(parse_policy(X_POLICY)) and not ambiguities(parse_policy(LINKEDIN))
    clash = X_POLICY.replace("categories: [bookmarks]", "categories: [bookmarks, posts]")
    assert ambiguities(parse_policy(clash))
