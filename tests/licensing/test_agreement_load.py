"""The agreement loader: both examples load, and every bad input is reported where it is."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from datalease.licensing.load import load_agreement
from datalease.licensing.model import FIELD_CATALOGUE, KEY_FIELDS, Agreement
from datalease.policy.load import load_policy
from datalease.policy.model import Policy, Scope
from datalease.policy.problems import Problem, ProblemsError

AGREEMENTS = Path(__file__).resolve().parents[2] / "src" / "datalease" / "examples" / "agreements"

BASE = """\
agreement: test-2025
partner: acme
status: active
term: {start: 2025-01-01, end: 2025-12-31}
purposes: [train_ai_system.generative]
categories: [posts, reposts]
regions: {denied: [EEA]}
content_window: {from: 2020-01-01}
fields:
  posts: [text, created_at]
  reposts: [created_at]
pricing: {model: flat_annual, amount: 1000, currency: USD}
deletion_sla_hours: 72
"""


def edit(old: str, new: str, base: str = BASE) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def problems(text: str, policy: Policy) -> list[Problem]:
    with pytest.raises(ProblemsError) as info:
        load_agreement(text, "a.yaml", policy=policy)
    return info.value.problems


def only(text: str, policy: Policy) -> Problem:
    found = problems(text, policy)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def at(problem: Problem) -> tuple[int, int, str]:
    return problem.line, problem.col, problem.field


# --- the examples and the happy path ------------------------------------------------------------


def test_lumen_example_loads(policy: Policy) -> None:
    path = AGREEMENTS / "lumen-genai.yaml"
    agreement = load_agreement(path.read_text(encoding="utf-8"), str(path), policy=policy)
    assert agreement.agreement_id == "lumen-genai-2025"
    assert agreement.partner == "lumen-labs"
    assert agreement.status == "active"
    assert agreement.categories == ("posts", "reposts")
    assert agreement.regions_allowed is None
    assert agreement.regions_denied == ("EEA",)
    assert agreement.pricing.model == "flat_annual"
    assert agreement.pricing.amount == Decimal(60_000_000)
    assert agreement.pricing.currency == "USD"
    assert agreement.deletion_sla_hours == 72
    assert agreement.term_start == datetime(2025, 1, 1, tzinfo=UTC)
    assert agreement.term_end == datetime(2027, 1, 1, tzinfo=UTC)  # end: 2026-12-31 is the last day
    assert agreement.fields["posts"] == ("text", "created_at", "lang", "sentiment")
    assert agreement.columns("posts") == ("post_key", "user_key", "text", "created_at", "lang", "sentiment")


def test_sentimetrics_example_loads(policy: Policy) -> None:
    path = AGREEMENTS / "sentimetrics-us.yaml"
    agreement = load_agreement(path.read_text(encoding="utf-8"), str(path), policy=policy)
    assert agreement.partner == "sentimetrics"
    assert agreement.purposes == ("train_ai_system.non_generative",)
    assert agreement.categories == ("posts", "likes")
    assert agreement.regions_allowed == ("US",)
    assert agreement.pricing.model == "per_1k_records"
    assert agreement.pricing.amount == Decimal("2.50")
    assert agreement.deletion_sla_hours == 24
    assert agreement.retention_days == 7


def test_scope_carries_the_agreement_limits(policy: Policy) -> None:
    agreement = load_agreement(BASE, "a.yaml", policy=policy)
    assert agreement.scope() == Scope(
        purposes=("train_ai_system.generative",),
        categories=("posts", "reposts"),
        partner="acme",
        regions_allowed=None,
        regions_denied=("EEA",),
        content_from=datetime(2020, 1, 1, tzinfo=UTC),
        content_until=None,
    )


def test_defaults(policy: Policy) -> None:
    text = edit("status: active\n", "").replace(
        "regions: {denied: [EEA]}\ncontent_window: {from: 2020-01-01}\n", ""
    )
    agreement = load_agreement(text, "a.yaml", policy=policy)
    assert agreement.status == "draft"
    assert agreement.retention_days == 7
    assert agreement.regions_allowed is None and agreement.regions_denied == ()
    assert agreement.content_from is None and agreement.content_until is None
    assert agreement.description == ""


def test_term_end_date_time_is_exclusive_instant(policy: Policy) -> None:
    text = edit("end: 2025-12-31}", "end: 2025-12-31T12:00:00+02:00}")
    assert load_agreement(text, "a.yaml", policy=policy).term_end == datetime(2025, 12, 31, 10, tzinfo=UTC)


def test_one_day_term_is_valid(policy: Policy) -> None:
    agreement = load_agreement(edit("end: 2025-12-31", "end: 2025-01-01"), "a.yaml", policy=policy)
    assert agreement.term_end == datetime(2025, 1, 2, tzinfo=UTC)


def test_star_region_and_allowed_list(policy: Policy) -> None:
    agreement = load_agreement(edit("{denied: [EEA]}", '{allowed: ["*", US]}'), "a.yaml", policy=policy)
    assert agreement.regions_allowed == ("*", "US")
    assert agreement.covers_regions(tuple(policy.regions)) == {"*", "US"}


def test_amount_as_text_and_decimal_are_exact(policy: Policy) -> None:
    text = edit("model: flat_annual, amount: 1000", 'model: per_query, amount: "0.0004"')
    assert load_agreement(text, "a.yaml", policy=policy).pricing.amount == Decimal("0.0004")
    text = edit("model: flat_annual, amount: 1000", "model: per_query, amount: 0.1")
    assert load_agreement(text, "a.yaml", policy=policy).pricing.amount == Decimal("0.1")


def test_keys_only_category(policy: Policy) -> None:
    agreement = load_agreement(edit("reposts: [created_at]", "reposts: []"), "a.yaml", policy=policy)
    assert agreement.fields["reposts"] == ()
    assert agreement.columns("reposts") == KEY_FIELDS["reposts"]


def test_catalogue() -> None:
    assert tuple(FIELD_CATALOGUE["posts"]) == (
        "text",
        "created_at",
        "lang",
        "sentiment",
        "sentiment_label",
        "pii_types",
    )
    assert tuple(FIELD_CATALOGUE["profile"]) == ("country", "region", "created_at")
    for category in ("likes", "reposts", "bookmarks"):
        assert tuple(FIELD_CATALOGUE[category]) == ("created_at",)


def test_agreement_is_frozen_and_hashable(policy: Policy) -> None:
    agreement = load_agreement(BASE, "a.yaml", policy=policy)
    with pytest.raises(AttributeError):
        agreement.status = "terminated"  # type: ignore[misc]
    assert isinstance(hash(agreement), int)
    assert isinstance(agreement, Agreement)


# --- the document's structure -------------------------------------------------------------------


def test_unknown_field(policy: Policy) -> None:
    problem = only(BASE + "colour: blue\n", policy)
    assert at(problem) == (14, 1, "colour")
    assert problem.expected.startswith("unknown field; expected one of agreement, partner, status")


def test_unknown_nested_field(policy: Policy) -> None:
    problem = only(edit("currency: USD}", "currency: USD, vat: 20}"), policy)
    assert at(problem) == (12, 60, "pricing.vat")
    assert "unknown field" in problem.expected


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("agreement: test-2025\n", "agreement"),
        ("partner: acme\n", "partner"),
        ("term: {start: 2025-01-01, end: 2025-12-31}\n", "term"),
        ("purposes: [train_ai_system.generative]\n", "purposes"),
        ("pricing: {model: flat_annual, amount: 1000, currency: USD}\n", "pricing"),
        ("deletion_sla_hours: 72\n", "deletion_sla_hours"),
    ],
)
def test_missing_required_field(policy: Policy, line: str, field: str) -> None:
    problem = only(edit(line, ""), policy)
    assert at(problem) == (1, 1, field)
    assert problem.expected == "required field is missing"


def test_missing_term_end_and_currency(policy: Policy) -> None:
    text = edit("{start: 2025-01-01, end: 2025-12-31}", "{start: 2025-01-01}")
    text = edit(", currency: USD}", "}", text)
    found = problems(text, policy)
    assert [(p.line, p.col, p.field, p.expected) for p in found] == [
        (4, 7, "term.end", "required field is missing"),
        (12, 10, "pricing.currency", "required field is missing"),
    ]


def test_not_a_mapping(policy: Policy) -> None:
    problem = only("- a\n- b\n", policy)
    assert at(problem) == (1, 1, "(document)")
    assert problem.expected == "expected a mapping of keys to values, got a list"


def test_invalid_yaml(policy: Policy) -> None:
    problem = only("agreement: [a\npartner: b\n", policy)
    assert problem.field == "(document)"
    assert problem.expected.startswith("not valid YAML")


def test_every_problem_is_collected_in_order(policy: Policy) -> None:
    text = edit("status: active", "status: live")
    text = edit("categories: [posts, reposts]", "categories: [posts, reposts, dms]", text)
    text = edit("currency: USD", "currency: usd", text)
    text = edit("deletion_sla_hours: 72", "deletion_sla_hours: 0", text)
    found = problems(text, policy)
    assert [p.field for p in found] == ["status", "categories[2]", "pricing.currency", "deletion_sla_hours"]
    assert [p.line for p in found] == sorted(p.line for p in found)
    assert (
        str(found[0])
        == "a.yaml:3:9: status: expected one of draft, active, suspended, terminated, got 'live'"
    )


# --- identity and status ------------------------------------------------------------------------


def test_bad_agreement_id(policy: Policy) -> None:
    problem = only(edit("agreement: test-2025", "agreement: Test 2025"), policy)
    assert at(problem) == (1, 12, "agreement")
    assert problem.expected.startswith("expected an id of lowercase letters, digits, - or _")


def test_bad_partner_name(policy: Policy) -> None:
    problem = only(edit("partner: acme", "partner: ACME Corp"), policy)
    assert at(problem) == (2, 10, "partner")
    assert "expected a partner name of lowercase letters" in problem.expected


def test_bad_status(policy: Policy) -> None:
    problem = only(edit("status: active", "status: signed"), policy)
    assert at(problem) == (3, 9, "status")
    assert problem.expected == "expected one of draft, active, suspended, terminated, got 'signed'"


# --- scope --------------------------------------------------------------------------------------


def test_category_not_in_vocabulary(policy: Policy) -> None:
    problem = only(edit("[posts, reposts]", "[posts, reposts, dms]"), policy)
    assert at(problem) == (6, 30, "categories[2]")
    assert problem.expected == "expected one of posts, likes, reposts, bookmarks, profile, got 'dms'"


def test_category_not_in_policy(policy: Policy) -> None:
    small = load_policy(
        "policy: small\ncategories: [posts, likes]\nversions:\n  - {id: v1, effective_from: 2024-01-01, rules: []}\n",
        "small.yaml",
    )
    found = problems(BASE, small)
    assert [at(p) for p in found] == [
        (6, 21, "categories[1]"),
        (7, 20, "regions.denied[0]"),
        (11, 3, "fields.reposts"),
    ]
    assert found[0].expected == "expected one of posts, likes, got 'reposts'"


def test_purpose_not_in_policy(policy: Policy) -> None:
    problem = only(edit("[train_ai_system.generative]", "[train_ai_system.generativ]"), policy)
    assert at(problem) == (5, 12, "purposes[0]")
    assert problem.expected.startswith("expected one of train_ai_system, train_ai_system.generative")
    assert problem.expected.endswith("got 'train_ai_system.generativ'")


def test_empty_purposes(policy: Policy) -> None:
    problem = only(edit("[train_ai_system.generative]", "[]"), policy)
    assert at(problem) == (5, 11, "purposes")
    assert problem.expected == "expected at least one purpose"


def test_region_not_in_policy(policy: Policy) -> None:
    problem = only(edit("{denied: [EEA]}", "{denied: [EU]}"), policy)
    assert at(problem) == (7, 20, "regions.denied[0]")
    assert problem.expected == "expected one of EEA, UK, CH, US or '*', got 'EU'"


def test_region_both_allowed_and_denied(policy: Policy) -> None:
    problem = only(edit("{denied: [EEA]}", "{allowed: [US, UK], denied: [UK]}"), policy)
    assert at(problem) == (7, 38, "regions.denied")
    assert problem.expected == "expected a region to be either allowed or denied, not both: UK"


def test_regions_denying_everything(policy: Policy) -> None:
    problem = only(edit("{denied: [EEA]}", '{denied: [EEA, UK, CH, US, "*"]}'), policy)
    assert at(problem) == (7, 19, "regions.denied")
    assert problem.expected.startswith("expected at least one region left")


def test_empty_allowed_regions(policy: Policy) -> None:
    problem = only(edit("{denied: [EEA]}", "{allowed: []}"), policy)
    assert at(problem) == (7, 20, "regions.allowed")
    assert "leave allowed out to cover every region" in problem.expected


def test_unknown_regions_key(policy: Policy) -> None:
    problem = only(edit("{denied: [EEA]}", "{excluded: [EEA]}"), policy)
    assert at(problem) == (7, 11, "regions.excluded")
    assert problem.expected == "unknown field; expected one of allowed, denied"


def test_content_window_until_before_from(policy: Policy) -> None:
    problem = only(edit("{from: 2020-01-01}", "{from: 2020-01-01, until: 2019-06-01}"), policy)
    assert at(problem) == (8, 43, "content_window.until")
    assert problem.expected.startswith("expected an instant after from (2020-01-01)")


# --- fields -------------------------------------------------------------------------------------


def test_field_not_in_catalogue(policy: Policy) -> None:
    problem = only(edit("posts: [text, created_at]", "posts: [text, colour]"), policy)
    assert at(problem) == (10, 17, "fields.posts[1]")
    assert problem.expected == (
        "expected one of text, created_at, lang, sentiment, sentiment_label, pii_types, got 'colour'"
    )


@pytest.mark.parametrize("raw", ["user_id", "post_id", "author_id", "handle", "birth_date"])
def test_raw_ids_are_refused(policy: Policy, raw: str) -> None:
    problem = only(edit("posts: [text, created_at]", f"posts: [text, {raw}]"), policy)
    assert at(problem) == (10, 17, "fields.posts[1]")
    assert f"{raw} is a platform identifier and is never shared" in problem.expected
    assert "HMAC pseudonyms added automatically" in problem.expected


def test_keys_are_never_listed(policy: Policy) -> None:
    problem = only(edit("reposts: [created_at]", "reposts: [user_key, created_at]"), policy)
    assert at(problem) == (11, 13, "fields.reposts[0]")
    assert "user_key is always present" in problem.expected
    assert "HMAC pseudonyms added automatically" in problem.expected


def test_raw_text_is_never_offered(policy: Policy) -> None:
    problem = only(edit("posts: [text, created_at]", "posts: [raw_text, created_at]"), policy)
    assert at(problem) == (10, 11, "fields.posts[0]")
    assert "the raw text is never offered, text is the PII-scrubbed text" in problem.expected


def test_field_listed_twice(policy: Policy) -> None:
    problem = only(edit("posts: [text, created_at]", "posts: [text, created_at, text]"), policy)
    assert at(problem) == (10, 29, "fields.posts[2]")
    assert problem.expected == "expected each field once; text is listed twice"


def test_fields_category_not_in_categories(policy: Policy) -> None:
    problem = only(
        edit("  reposts: [created_at]\n", "  reposts: [created_at]\n  likes: [created_at]\n"), policy
    )
    assert at(problem) == (12, 3, "fields.likes")
    assert problem.expected.startswith(
        "expected only categories the agreement licenses; add likes to categories"
    )


def test_fields_unknown_category(policy: Policy) -> None:
    problem = only(edit("  reposts: [created_at]\n", "  reposts: [created_at]\n  dms: [text]\n"), policy)
    assert at(problem) == (12, 3, "fields.dms")
    assert problem.expected == "unknown category; expected one of the agreement's categories (posts, reposts)"


def test_category_without_fields_entry(policy: Policy) -> None:
    problem = only(edit("  reposts: [created_at]\n", ""), policy)
    assert at(problem) == (9, 1, "fields.reposts")
    assert problem.expected.startswith("required field is missing; expected the reposts fields to deliver")


def test_fields_entry_not_a_list(policy: Policy) -> None:
    problem = only(edit("reposts: [created_at]", "reposts: created_at"), policy)
    assert at(problem) == (11, 12, "fields.reposts")
    assert problem.expected.endswith("got 'created_at'")


# --- pricing, term, SLA, retention --------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "col", "field", "expected"),
    [
        (
            "model: flat_annual",
            "model: monthly",
            18,
            "pricing.model",
            "expected one of flat_annual, per_1k_records, per_query, got 'monthly'",
        ),
        (
            "amount: 1000",
            "amount: 0",
            39,
            "pricing.amount",
            "expected a positive amount such as 60000000 or 2.50, got int 0",
        ),
        (
            "amount: 1000",
            "amount: -5",
            39,
            "pricing.amount",
            "expected a positive amount such as 60000000 or 2.50, got int -5",
        ),
        (
            "amount: 1000",
            "amount: lots",
            39,
            "pricing.amount",
            "expected a positive amount such as 60000000 or 2.50, got 'lots'",
        ),
        (
            "amount: 1000",
            "amount: .nan",
            39,
            "pricing.amount",
            "expected a positive amount such as 60000000 or 2.50, got float nan",
        ),
        (
            "currency: USD",
            "currency: usd",
            55,
            "pricing.currency",
            "expected an ISO-4217 currency code such as USD or EUR, got 'usd'",
        ),
        (
            "currency: USD",
            "currency: ZZZ",
            55,
            "pricing.currency",
            "expected an ISO-4217 currency code such as USD or EUR, got 'ZZZ'",
        ),
        (
            "currency: USD",
            "currency: XXX",
            55,
            "pricing.currency",
            "expected an ISO-4217 currency code such as USD or EUR, got 'XXX'",
        ),
    ],
)
def test_bad_pricing(policy: Policy, old: str, new: str, col: int, field: str, expected: str) -> None:
    problem = only(edit(old, new), policy)
    assert (problem.line, problem.col, problem.field, problem.expected) == (12, col, field, expected)


def test_term_end_before_start(policy: Policy) -> None:
    problem = only(edit("end: 2025-12-31", "end: 2024-12-31"), policy)
    assert at(problem) == (4, 32, "term.end")
    assert problem.expected == "expected the term to end on or after its start (2025-01-01), got 2024-12-31"


def test_term_end_date_time_must_be_after_start(policy: Policy) -> None:
    problem = only(edit("end: 2025-12-31", "end: 2025-01-01T00:00:00Z"), policy)
    assert at(problem) == (4, 32, "term.end")
    assert problem.expected == (
        "expected the term to end on or after its start (2025-01-01), got 2025-01-01T00:00:00+00:00"
    )


def test_term_now_is_refused(policy: Policy) -> None:
    problem = only(edit("start: 2025-01-01", "start: now"), policy)
    assert at(problem) == (4, 15, "term.start")
    assert problem.expected.startswith("expected a date such as 2025-01-01")


def test_term_bad_date(policy: Policy) -> None:
    problem = only(edit("end: 2025-12-31", "end: 2025-13-31"), policy)
    assert at(problem) == (4, 32, "term.end")
    assert problem.expected.startswith("expected a date such as 2025-01-01")
    assert problem.expected.endswith("got '2025-13-31'")


@pytest.mark.parametrize("hours", ["0", "8761", "-1", "2.5", "'72'", "true"])
def test_bad_deletion_sla(policy: Policy, hours: str) -> None:
    problem = only(edit("deletion_sla_hours: 72", f"deletion_sla_hours: {hours}"), policy)
    assert at(problem) == (13, 21, "deletion_sla_hours")
    assert problem.expected.startswith("expected a whole number of hours from 1 to 8760, got")


@pytest.mark.parametrize("hours", [1, 8760])
def test_deletion_sla_bounds(policy: Policy, hours: int) -> None:
    text = edit("deletion_sla_hours: 72", f"deletion_sla_hours: {hours}")
    assert load_agreement(text, "a.yaml", policy=policy).deletion_sla_hours == hours


def test_bad_retention(policy: Policy) -> None:
    problem = only(BASE + "retention_days: 0\n", policy)
    assert at(problem) == (14, 17, "retention_days")
    assert problem.expected == "expected a whole number of days from 1 to 365, got int 0"


# --- hostile documents (the bounds of policy.problems, shared with the policy loader) ------------


@pytest.mark.parametrize(
    ("text", "line", "col", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, 1, 33, "expected at most 32 levels of nested lists, mappings and values"),
        ("agreement: " + "{a: " * 50_000 + "1" + "}" * 50_000, 1, 133, "expected at most 32 levels of nested lists, mappings and values"),
        ("agreement: te\x00st\n", 1, 14, "not valid YAML: character U+0000 is not allowed"),
        ("description: " + "x" * (50 * 1024 * 1024) + "\n", 1, 1, "expected at most 256 KiB (262,144 bytes) of YAML"),
        ("deletion_sla_hours: " + "9" * 5_000 + "\n", 1, 21, "not valid YAML: expected a number of at most 4,300 digits"),
        ('a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
         + "".join(f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
         + "agreement: *i\n", 5, 8, "expected at most 10,000 values in all"),
    ],
    ids=["deep-list", "deep-mapping", "nul", "50-MB-line", "5000-digits", "billion-laughs"],
)  # fmt: skip
def test_hostile_documents_are_one_located_problem(
    policy: Policy, text: str, line: int, col: int, expected: str
) -> None:
    problem = only(text, policy)
    assert (problem.line, problem.col, problem.field) == (line, col, "(document)")
    assert problem.expected.startswith(expected), problem
