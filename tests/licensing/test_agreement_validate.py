"""Checks against the store's state: unknown partner, overlapping active agreements, changed content."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from datalease.licensing.load import load_agreement
from datalease.licensing.model import Agreement, Partner, Pricing, content_fingerprint
from datalease.licensing.validate import (
    check_agreement,
    find_overlap,
    overlapping_agreements,
    purposes_overlap,
    validate_agreement,
)
from datalease.policy.model import Policy
from datalease.policy.problems import Problem, ProblemsError

TEXT = """\
# new agreement
agreement: acme-2026
partner: acme
status: active
term: {start: 2026-01-01, end: 2026-12-31}
purposes: [train_ai_system.generative]
categories: [posts]
fields:
  posts: [text]
pricing: {model: per_query, amount: "0.01", currency: EUR}
deletion_sla_hours: 48
"""
PARTNERS = [
    Partner("acme", "Acme AI", None, datetime(2025, 1, 1, tzinfo=UTC)),
    Partner("globex", "Globex", None, datetime(2025, 1, 1, tzinfo=UTC)),
]


def day(year: int, month: int, d: int) -> datetime:
    return datetime(year, month, d, tzinfo=UTC)


def agreement(**changes: Any) -> Agreement:
    base = Agreement(
        agreement_id="acme-2025",
        partner="acme",
        status="active",
        purposes=("train_ai_system.generative",),
        categories=("posts",),
        fields={"posts": ("text",)},
        pricing=Pricing("flat_annual", Decimal(1000), "USD"),
        term_start=day(2025, 1, 1),
        term_end=day(2027, 1, 1),
        deletion_sla_hours=72,
    )
    if "categories" in changes and "fields" not in changes:
        changes["fields"] = dict.fromkeys(changes["categories"], ())
    return replace(base, **changes)


def validate(
    policy: Policy, others: list[Agreement], text: str = TEXT, partners: Any = PARTNERS
) -> list[Problem]:
    new = load_agreement(text, "new.yaml", policy=policy)
    return validate_agreement(
        new, source_text=text, source="new.yaml", policy=policy, partners=partners, agreements=others
    )


# --- partner ------------------------------------------------------------------------------------


def test_valid_agreement_has_no_problems(policy: Policy) -> None:
    assert validate(policy, []) == []


def test_unknown_partner_names_the_command(policy: Policy) -> None:
    [problem] = validate(policy, [], partners=["globex"])
    assert (problem.source, problem.line, problem.col, problem.field) == ("new.yaml", 3, 10, "partner")
    assert "`datalease partner add acme`" in problem.expected
    assert str(problem).startswith("new.yaml:3:10: partner: expected a known partner; 'acme' is not one yet")


def test_partners_may_be_names_or_partner_objects(policy: Policy) -> None:
    assert validate(policy, [], partners=["acme"]) == []
    assert validate(policy, [], partners=PARTNERS) == []


# --- overlap ------------------------------------------------------------------------------------


def test_overlap_is_located_at_the_agreement_line_and_names_the_other(policy: Policy) -> None:
    [problem] = validate(policy, [agreement()])
    assert (problem.line, problem.col, problem.field) == (2, 12, "agreement")
    assert "overlaps active agreement acme-2025 (term 2025-01-01 to 2026-12-31)" in problem.expected
    assert (
        "for 2026-01-01 to 2026-12-31, categories posts, purposes train_ai_system.generative"
        in problem.expected
    )
    assert "regions EEA, UK, CH, US, *" in problem.expected


def test_every_overlapping_agreement_is_reported(policy: Policy) -> None:
    others = [agreement(), agreement(agreement_id="acme-extra", purposes=("train_ai_system",))]
    problems = validate(policy, others)
    assert len(problems) == 2
    assert "acme-2025" in problems[0].expected and "acme-extra" in problems[1].expected


@pytest.mark.parametrize(
    ("label", "other"),
    [
        ("disjoint term", agreement(term_end=day(2026, 1, 1))),  # ends the day before the new one starts
        ("disjoint term after", agreement(term_start=day(2027, 1, 1), term_end=day(2028, 1, 1))),
        ("disjoint categories", agreement(categories=("likes", "reposts"))),
        ("unrelated purposes", agreement(purposes=("train_ai_system.non_generative",))),
        ("unrelated purpose family", agreement(purposes=("third_party_sharing",))),
        ("other partner", agreement(partner="globex")),
        ("not active: draft", agreement(status="draft")),
        ("not active: suspended", agreement(status="suspended")),
        ("not active: terminated", agreement(status="terminated")),
    ],
)
def test_no_overlap(policy: Policy, label: str, other: Agreement) -> None:
    assert validate(policy, [other]) == [], label


def test_disjoint_regions_allowed_vs_denied(policy: Policy) -> None:
    text = TEXT.replace("categories: [posts]\n", "categories: [posts]\nregions: {denied: [EEA]}\n")
    assert validate(policy, [agreement(regions_allowed=("EEA",))], text) == []
    assert len(validate(policy, [agreement(regions_allowed=("EEA", "US"))], text)) == 1


def test_disjoint_allowed_regions(policy: Policy) -> None:
    text = TEXT.replace("categories: [posts]\n", "categories: [posts]\nregions: {allowed: [US]}\n")
    assert validate(policy, [agreement(regions_allowed=("UK", "CH"))], text) == []
    assert len(validate(policy, [agreement(regions_allowed=("UK", "US"))], text)) == 1


def test_star_region_overlaps_only_star(policy: Policy) -> None:
    text = TEXT.replace("categories: [posts]\n", 'categories: [posts]\nregions: {allowed: ["*"]}\n')
    assert validate(policy, [agreement(regions_denied=("*",))], text) == []
    [problem] = validate(policy, [agreement(regions_allowed=("*", "US"))], text)
    assert problem.expected.count("regions *.") == 1


def test_disjoint_content_windows_do_not_overlap(policy: Policy) -> None:
    text = TEXT.replace("categories: [posts]\n", "categories: [posts]\ncontent_window: {from: 2024-01-01}\n")
    assert validate(policy, [agreement(content_until=day(2024, 1, 1))], text) == []
    assert len(validate(policy, [agreement(content_until=day(2024, 1, 2))], text)) == 1


@pytest.mark.parametrize(
    ("new", "old"),
    [
        ("train_ai_system", "train_ai_system.generative"),
        ("train_ai_system.generative", "train_ai_system"),
        ("train_ai_system.generative", "train_ai_system.generative"),
    ],
)
def test_purpose_hierarchy_overlaps(policy: Policy, new: str, old: str) -> None:
    text = TEXT.replace("[train_ai_system.generative]", f"[{new}]")
    [problem] = validate(policy, [agreement(purposes=(old,))], text)
    assert "purposes train_ai_system.generative" in problem.expected  # the narrower purpose is named


def test_purposes_overlap() -> None:
    assert purposes_overlap("train_ai_system", "train_ai_system.generative")
    assert purposes_overlap("train_ai_system.generative", "train_ai_system")
    assert not purposes_overlap("train_ai_system.generative", "train_ai_system.non_generative")
    assert not purposes_overlap("train_ai_system", "train_ai_system_v2")  # a prefix is not an ancestor


def test_draft_does_not_conflict_yet(policy: Policy) -> None:
    assert validate(policy, [agreement()], TEXT.replace("status: active", "status: draft")) == []


def test_find_overlap_details(policy: Policy) -> None:
    a = agreement(categories=("posts", "likes"), regions_denied=("EEA",))
    b = agreement(
        agreement_id="b",
        categories=("likes", "reposts"),
        purposes=("train_ai_system",),
        regions_allowed=("EEA", "US"),
        term_start=day(2026, 6, 1),
        term_end=day(2030, 1, 1),
    )
    overlap = find_overlap(a, b, tuple(policy.regions))
    assert overlap is not None
    assert overlap.categories == ("likes",)
    assert overlap.purposes == ("train_ai_system.generative",)
    assert overlap.regions == ("US",)
    assert (overlap.term_start, overlap.term_end) == (day(2026, 6, 1), day(2027, 1, 1))


def test_overlapping_agreements_skips_itself(policy: Policy) -> None:
    a = agreement()
    assert overlapping_agreements(a, [a], policy) == []


# --- same id, different content -----------------------------------------------------------------


def test_same_id_with_different_content(policy: Policy) -> None:
    stored = load_agreement(TEXT, "old.yaml", policy=policy)
    changed = TEXT.replace('amount: "0.01"', 'amount: "0.02"').replace(
        "deletion_sla_hours: 48", "deletion_sla_hours: 24"
    )
    [problem] = validate(policy, [stored], changed)
    assert (problem.line, problem.col, problem.field) == (2, 12, "agreement")
    assert (
        "'acme-2026' already exists with different content (pricing, deletion_sla_hours)" in problem.expected
    )
    assert "acme-2026-v2" in problem.expected


def test_same_content_reformatted_is_not_a_change(policy: Policy) -> None:
    stored = replace(load_agreement(TEXT, "old.yaml", policy=policy), status="suspended")
    reformatted = (
        TEXT.replace('amount: "0.01"', "amount: 0.010")
        .replace("# new agreement\n", "")
        .replace(
            "term: {start: 2026-01-01, end: 2026-12-31}", "term:\n  start: 2026-01-01\n  end: 2026-12-31"
        )
    )
    assert content_fingerprint(stored) == content_fingerprint(load_agreement(reformatted, "x", policy=policy))
    assert validate(policy, [stored], reformatted) == []  # same contract; status is managed separately


def test_check_agreement_raises_with_every_problem(policy: Policy) -> None:
    new = load_agreement(TEXT, "new.yaml", policy=policy)
    with pytest.raises(ProblemsError) as info:
        check_agreement(
            new, source_text=TEXT, source="new.yaml", policy=policy, partners=[], agreements=[agreement()]
        )
    assert [p.field for p in info.value.problems] == ["agreement", "partner"]
