"""Point decisions on the X example (and small inline policies), with their reason codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from datalease.policy.decide import decide
from datalease.policy.load import load_policy
from datalease.policy.model import (
    ANY,
    Decision,
    HardExclusions,
    Policy,
    PolicyVersion,
    RecordFacts,
    Rule,
    Scope,
    UserFacts,
)
from datalease.policy.resolve import adult_cutoff
from datalease.policy.vocabulary import (
    CATEGORIES,
    MASTER_KEY,
    MECHANISMS,
    PURPOSES,
    REASON_ORDER,
    Reason,
    category_key,
    partner_block_key,
    purpose_key,
)

FIXTURES = Path(__file__).parent / "fixtures"

X = load_policy(
    files("datalease.examples").joinpath("x-2024.yaml").read_text(encoding="utf-8"), "x-2024.yaml"
)
LINKEDIN = load_policy((FIXTURES / "linkedin-2025.yaml").read_text(encoding="utf-8"), "linkedin-2025.yaml")

X_FIRST = datetime(2023, 9, 29, tzinfo=UTC)
X_SECOND = datetime(2024, 11, 15, tzinfo=UTC)
T = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)

GENERATIVE = "train_ai_system.generative"
INDEPENDENT = "third_party_sharing.independent"


def user(country: str = "US", birth: date | None = date(1990, 5, 1), state: str = "active") -> UserFacts:
    return UserFacts(user_id=1, country=country, birth_date=birth, account_state=state)


def record(
    category: str = "posts",
    owner: UserFacts | None = None,
    created_at: datetime = datetime(2023, 1, 1, tzinfo=UTC),
    deleted_at: datetime | None = None,
    visibility: str = "public",
) -> RecordFacts:
    return RecordFacts(category, owner or user(), created_at, deleted_at, visibility)


def scope(*purposes: str, partner: str | None = None, **limits: object) -> Scope:
    return Scope(purposes=purposes or (GENERATIVE,), categories=CATEGORIES, partner=partner, **limits)  # type: ignore[arg-type]


def x(
    rec: RecordFacts | None = None,
    consent: Mapping[str, bool] | None = None,
    sc: Scope | None = None,
    at: datetime = T,
    policy: Policy = X,
) -> Decision:
    return decide(policy, rec or record(), consent or {}, sc or scope(), at)


def reasons(*args: object, **kwargs: object) -> tuple[str, ...]:
    decision = x(*args, **kwargs)  # type: ignore[arg-type]
    assert decision.allowed is (not decision.reasons)
    return decision.reasons


# --- the X timeline -------------------------------------------------------------------------------


def test_before_the_first_version_nothing_is_shared() -> None:
    decision = x(at=X_FIRST - SECOND)
    assert decision == Decision(False, (Reason.BEFORE_POLICY_EFFECTIVE,), None, "US", {})


@pytest.mark.parametrize("at", [X_FIRST, datetime(2024, 3, 1, tzinfo=UTC), X_SECOND - SECOND])
def test_first_version_excludes_everything(at: datetime) -> None:
    decision = x(at=at)
    assert decision.reasons == (Reason.EXCLUDED_BY_POLICY,)
    assert decision.version_id == "2023-09"
    assert decision.mechanisms == {GENERATIVE: "excluded"}


@pytest.mark.parametrize("at", [X_SECOND, T])
def test_us_adult_with_no_settings_is_allowed_for_posts(at: datetime) -> None:
    decision = x(at=at)
    assert decision.allowed
    assert decision.reasons == ()
    assert decision.version_id == "2024-11"
    assert decision.region == "US"
    assert decision.mechanisms == {GENERATIVE: "opt_out"}


@pytest.mark.parametrize("category", ["posts", "likes", "reposts", "profile"])
def test_opt_out_categories(category: str) -> None:
    decision = x(record(category))
    assert decision.allowed
    assert decision.mechanisms == {GENERATIVE: "opt_out"}


def test_country_in_no_region_falls_under_star() -> None:
    decision = x(record(owner=user("BR")))
    assert decision.allowed
    assert decision.region == ANY


def test_uk_is_not_carved_out_in_the_x_example() -> None:
    assert x(record(owner=user("GB"))).allowed


# --- bookmarks are opt-in -------------------------------------------------------------------------


def test_bookmarks_need_an_explicit_opt_in() -> None:
    bookmark = record("bookmarks")
    assert reasons(bookmark) == (Reason.OPT_IN_REQUIRED,)
    assert x(bookmark).mechanisms == {GENERATIVE: "opt_in"}
    # The master toggle on is not an opt-in to the category.
    assert reasons(bookmark, {MASTER_KEY: True}) == (Reason.OPT_IN_REQUIRED,)
    assert reasons(bookmark, {category_key("bookmarks"): True}) == ()
    assert reasons(bookmark, {category_key("bookmarks"): False}) == (
        Reason.OPTED_OUT,
        Reason.OPT_IN_REQUIRED,
    )


def test_explicit_false_beats_an_opt_in() -> None:
    consent = {category_key("bookmarks"): True, MASTER_KEY: False}
    assert reasons(record("bookmarks"), consent) == (Reason.OPTED_OUT,)


# --- regions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("country", ["DE", "FR", "NO", "IS"])
def test_eea_user_is_region_excluded(country: str) -> None:
    decision = x(record(owner=user(country)), {MASTER_KEY: True, category_key("posts"): True})
    assert decision.reasons == (Reason.REGION_EXCLUDED,)
    assert decision.region == "EEA"
    assert decision.mechanisms == {GENERATIVE: "excluded"}


def test_consent_is_not_consulted_where_the_policy_excludes() -> None:
    # An explicit refusal adds nothing when nothing may flow anyway.
    assert reasons(record(owner=user("DE")), {MASTER_KEY: False}) == (Reason.REGION_EXCLUDED,)


# --- the owner's settings -------------------------------------------------------------------------


def test_master_toggle_false_opts_out() -> None:
    assert reasons(consent={MASTER_KEY: False}) == (Reason.OPTED_OUT,)
    assert reasons(consent={MASTER_KEY: True}) == ()


def test_category_false_opts_out_of_that_category_only() -> None:
    consent = {category_key("posts"): False}
    assert reasons(record("posts"), consent) == (Reason.OPTED_OUT,)
    assert reasons(record("likes"), consent) == ()


def test_refusing_a_purpose_covers_its_descendants_only() -> None:
    consent = {purpose_key("train_ai_system"): False}
    assert reasons(consent=consent, sc=scope(GENERATIVE)) == (Reason.PURPOSE_NOT_CONSENTED,)
    assert reasons(consent=consent, sc=scope("train_ai_system.non_generative")) == (
        Reason.PURPOSE_NOT_CONSENTED,
    )
    assert reasons(consent=consent, sc=scope(INDEPENDENT)) == ()
    assert reasons(consent=consent, sc=scope(GENERATIVE, INDEPENDENT)) == (Reason.PURPOSE_NOT_CONSENTED,)


def test_refusing_a_sub_purpose_leaves_its_siblings() -> None:
    consent = {purpose_key(GENERATIVE): False}
    assert reasons(consent=consent, sc=scope(GENERATIVE)) == (Reason.PURPOSE_NOT_CONSENTED,)
    assert reasons(consent=consent, sc=scope("train_ai_system.non_generative")) == ()


def test_purpose_true_does_not_override_a_category_refusal() -> None:
    consent = {purpose_key(GENERATIVE): True, category_key("posts"): False}
    assert reasons(consent=consent) == (Reason.OPTED_OUT,)


def test_blocked_partner_only_blocks_that_partner() -> None:
    consent = {partner_block_key("acme"): True}
    assert reasons(consent=consent, sc=scope(partner="acme")) == (Reason.PARTNER_BLOCKED,)
    assert reasons(consent=consent, sc=scope(partner="globex")) == ()
    assert reasons(consent=consent, sc=scope()) == ()
    assert reasons(consent={partner_block_key("acme"): False}, sc=scope(partner="acme")) == ()


# --- hard exclusions ------------------------------------------------------------------------------


def test_eighteenth_birthday_today_is_an_adult_one_day_later_is_a_minor() -> None:
    at = datetime(2025, 1, 15, 23, 59, 59, tzinfo=UTC)
    assert reasons(record(owner=user(birth=date(2007, 1, 15))), at=at) == ()
    assert reasons(record(owner=user(birth=date(2007, 1, 16))), at=at) == (Reason.MINOR,)


def test_unknown_birth_date() -> None:
    assert reasons(record(owner=user(birth=None))) == (Reason.AGE_UNKNOWN,)
    allow = replace(X, hard_exclusions=replace(X.hard_exclusions, exclude_unknown_age=False))
    assert reasons(record(owner=user(birth=None)), policy=allow) == ()


def test_minimum_age_comes_from_the_policy() -> None:
    sixteen = replace(X, hard_exclusions=replace(X.hard_exclusions, minimum_age=16))
    seventeen_year_old = record(owner=user(birth=date(2007, 6, 1)))
    assert reasons(seventeen_year_old) == (Reason.MINOR,)
    assert reasons(seventeen_year_old, policy=sixteen) == ()


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("protected", Reason.PROTECTED_ACCOUNT),
        ("suspended", Reason.ACCOUNT_SUSPENDED),
        ("deactivated", Reason.ACCOUNT_DEACTIVATED),
        ("deleted", Reason.ACCOUNT_DELETED),
    ],
)
def test_account_states(state: str, reason: str) -> None:
    assert reasons(record(owner=user(state=state))) == (reason,)


def test_account_state_switches_come_from_the_policy() -> None:
    lenient = replace(
        X, hard_exclusions=replace(X.hard_exclusions, protected_accounts=False, account_states=("deleted",))
    )
    assert reasons(record(owner=user(state="protected")), policy=lenient) == ()
    assert reasons(record(owner=user(state="suspended")), policy=lenient) == ()
    assert reasons(record(owner=user(state="deleted")), policy=lenient) == (Reason.ACCOUNT_DELETED,)


def test_deleted_content() -> None:
    assert reasons(record(deleted_at=T)) == (Reason.CONTENT_DELETED,)
    assert reasons(record(deleted_at=T - SECOND)) == (Reason.CONTENT_DELETED,)
    assert reasons(record(deleted_at=T + SECOND)) == ()


def test_non_public_content() -> None:
    assert reasons(record(visibility="followers")) == (Reason.NOT_PUBLIC,)
    open_policy = replace(X, hard_exclusions=replace(X.hard_exclusions, non_public_content=False))
    assert reasons(record(visibility="followers"), policy=open_policy) == ()


def test_record_created_after_t() -> None:
    assert reasons(record(created_at=T + SECOND)) == (Reason.NOT_YET_CREATED,)
    assert reasons(record(created_at=T)) == ()


# --- the recipient's scope ------------------------------------------------------------------------


def test_scope_regions() -> None:
    us = record()
    assert reasons(us, sc=scope(regions_denied=("US",))) == (Reason.OUTSIDE_AGREEMENT_REGIONS,)
    assert reasons(us, sc=scope(regions_allowed=("UK",))) == (Reason.OUTSIDE_AGREEMENT_REGIONS,)
    assert reasons(us, sc=scope(regions_allowed=("UK", "US"))) == ()
    assert reasons(us, sc=scope(regions_allowed=("US",), regions_denied=("US",))) == (
        Reason.OUTSIDE_AGREEMENT_REGIONS,
    )
    brazil = record(owner=user("BR"))
    assert reasons(brazil, sc=scope(regions_allowed=(ANY,))) == ()
    assert reasons(brazil, sc=scope(regions_denied=(ANY,))) == (Reason.OUTSIDE_AGREEMENT_REGIONS,)


def test_content_window_is_half_open() -> None:
    created = datetime(2024, 12, 1, tzinfo=UTC)
    rec = record(created_at=created)
    assert reasons(rec, sc=scope(content_from=created)) == ()
    assert reasons(rec, sc=scope(content_from=created + SECOND)) == (Reason.OUTSIDE_CONTENT_WINDOW,)
    assert reasons(rec, sc=scope(content_until=created + SECOND)) == ()
    assert reasons(rec, sc=scope(content_until=created)) == (Reason.OUTSIDE_CONTENT_WINDOW,)


# --- several reasons ------------------------------------------------------------------------------


def test_several_reasons_come_in_canonical_order() -> None:
    owner = user("DE", birth=date(2010, 1, 1), state="protected")
    rec = record(owner=owner, created_at=T + SECOND, deleted_at=T - SECOND, visibility="followers")
    decision = x(rec, {MASTER_KEY: False}, scope(regions_denied=("EEA",), content_until=T))
    expected = (
        Reason.PROTECTED_ACCOUNT,
        Reason.MINOR,
        Reason.CONTENT_DELETED,
        Reason.NOT_PUBLIC,
        Reason.NOT_YET_CREATED,
        Reason.OUTSIDE_AGREEMENT_REGIONS,
        Reason.OUTSIDE_CONTENT_WINDOW,
        Reason.REGION_EXCLUDED,
    )
    assert decision.reasons == expected
    assert decision.reasons == tuple(r for r in REASON_ORDER if r in expected)


def test_consent_reasons_in_canonical_order() -> None:
    consent = {
        MASTER_KEY: False,
        purpose_key("train_ai_system"): False,
        partner_block_key("acme"): True,
    }
    assert reasons(record("bookmarks"), consent, scope(partner="acme")) == (
        Reason.OPTED_OUT,
        Reason.OPT_IN_REQUIRED,
        Reason.PURPOSE_NOT_CONSENTED,
        Reason.PARTNER_BLOCKED,
    )


def test_reason_order_lists_every_reason_once() -> None:
    codes = {v for k, v in vars(Reason).items() if k.isupper()}
    assert set(REASON_ORDER) == codes
    assert len(REASON_ORDER) == len(codes)


def test_before_policy_effective_still_reports_hard_exclusions() -> None:
    rec = record(owner=user(state="suspended"), created_at=datetime(2023, 1, 1, tzinfo=UTC))
    assert reasons(rec, at=X_FIRST - SECOND) == (Reason.BEFORE_POLICY_EFFECTIVE, Reason.ACCOUNT_SUSPENDED)


# --- rule windows and specificity -----------------------------------------------------------------


def test_linkedin_window_boundary() -> None:
    member = record(owner=user("DE"))
    before = x(member, at=datetime(2025, 11, 2, 23, 59, 59, tzinfo=UTC), policy=LINKEDIN)
    assert before.reasons == (Reason.REGION_EXCLUDED,)
    assert before.mechanisms == {GENERATIVE: "excluded"}
    after = x(member, at=datetime(2025, 11, 3, tzinfo=UTC), policy=LINKEDIN)
    assert after.allowed
    assert after.mechanisms == {GENERATIVE: "opt_out"}
    assert x(member, {MASTER_KEY: False}, at=datetime(2025, 11, 3, tzinfo=UTC), policy=LINKEDIN).reasons == (
        Reason.OPTED_OUT,
    )


def test_linkedin_us_member_was_opt_out_all_along() -> None:
    assert x(at=datetime(2024, 9, 18, tzinfo=UTC), policy=LINKEDIN).allowed
    assert x(at=datetime(2024, 9, 18, tzinfo=UTC) - SECOND, policy=LINKEDIN).reasons == (
        Reason.BEFORE_POLICY_EFFECTIVE,
    )


def test_no_matching_rule_is_excluded() -> None:
    decision = x(sc=scope("train_ai_system.non_generative"), policy=LINKEDIN)
    assert decision.reasons == (Reason.NO_RULE,)
    assert decision.mechanisms == {"train_ai_system.non_generative": "excluded"}


def test_category_the_policy_does_not_list_is_not_shared() -> None:
    # The LinkedIn-like policy lists posts, likes, reposts, profile - not bookmarks.
    assert "bookmarks" not in LINKEDIN.categories
    assert not x(record("bookmarks"), policy=LINKEDIN).allowed


def inline(rules: str) -> Policy:
    head = dedent(
        """
        policy: inline
        regions:
          EEA: [DE, FR]
          US: [US]
        versions:
          - id: v1
            effective_from: 2024-01-01
            rules:
        """
    ).lstrip("\n")
    return load_policy(head + "".join("      " + line + "\n" for line in dedent(rules).strip().splitlines()))


def test_purpose_specific_rule_beats_a_purpose_wide_one() -> None:
    policy = inline(
        """
        - region: "*"
          mechanism: opt_out
        - region: "*"
          purposes: [train_ai_system]
          mechanism: opt_in
        - region: "*"
          purposes: [train_ai_system.generative]
          mechanism: excluded
        """
    )
    mechanisms = x(
        sc=scope(GENERATIVE, "train_ai_system.non_generative", INDEPENDENT), policy=policy
    ).mechanisms
    assert mechanisms == {
        GENERATIVE: "excluded",
        "train_ai_system.non_generative": "opt_in",
        INDEPENDENT: "opt_out",
    }
    assert x(sc=scope(GENERATIVE), policy=policy).reasons == (Reason.EXCLUDED_BY_POLICY,)


def test_region_specific_rule_beats_a_category_or_purpose_specific_one() -> None:
    policy = inline(
        """
        - region: "*"
          categories: [posts]
          purposes: [train_ai_system.generative]
          mechanism: opt_out
        - region: EEA
          mechanism: excluded
        - region: US
          mechanism: opt_in
        """
    )
    assert x(record(owner=user("DE")), policy=policy).reasons == (Reason.REGION_EXCLUDED,)
    assert x(record(owner=user("US")), policy=policy).mechanisms == {GENERATIVE: "opt_in"}
    assert x(record(owner=user("BR")), policy=policy).mechanisms == {GENERATIVE: "opt_out"}
    assert x(record("likes", owner=user("BR")), policy=policy).reasons == (Reason.NO_RULE,)


def test_category_specific_rule_beats_a_category_wide_one() -> None:
    policy = inline(
        """
        - region: "*"
          mechanism: opt_out
        - region: "*"
          categories: [profile]
          mechanism: excluded
        """
    )
    assert x(record("profile"), policy=policy).reasons == (Reason.EXCLUDED_BY_POLICY,)
    assert x(record("posts"), policy=policy).allowed


def test_inactive_specific_rule_falls_back_to_the_general_one() -> None:
    policy = inline(
        """
        - region: "*"
          mechanism: opt_out
        - region: EEA
          mechanism: excluded
          from: 2025-01-01
          until: 2025-02-01
        """
    )
    eu = record(owner=user("DE"))
    assert x(eu, at=datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), policy=policy).allowed
    assert x(eu, at=datetime(2025, 1, 1, tzinfo=UTC), policy=policy).reasons == (Reason.REGION_EXCLUDED,)
    assert x(eu, at=datetime(2025, 2, 1, tzinfo=UTC), policy=policy).allowed


# --- leap-day birthdays ---------------------------------------------------------------------------


def test_adult_cutoff() -> None:
    assert adult_cutoff(datetime(2025, 1, 15, tzinfo=UTC), 18) == date(2007, 1, 15)
    # On 29 Feb of a leap year, whose 18-years-earlier year has no 29 Feb: 28 Feb is the cutoff.
    assert adult_cutoff(datetime(2024, 2, 29, tzinfo=UTC), 18) == date(2006, 2, 28)
    assert adult_cutoff(datetime(2024, 2, 29, tzinfo=UTC), 16) == date(2008, 2, 29)


def test_leap_day_birthday() -> None:
    leapling = record(owner=user(birth=date(2008, 2, 29)))
    # In a non-leap year a 29-February child comes of age on 1 March.
    assert reasons(leapling, at=datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)) == (Reason.MINOR,)
    assert reasons(leapling, at=datetime(2026, 3, 1, tzinfo=UTC)) == ()
    # On 29 Feb 2024 the people born on 28 Feb 2006 are 18, those born on 1 Mar 2006 are not.
    leap_day = datetime(2024, 2, 29, 12, tzinfo=UTC)
    opt_out = inline('- region: "*"\n  mechanism: opt_out')  # X shared nothing in Feb 2024
    assert reasons(record(owner=user(birth=date(2006, 2, 28))), at=leap_day, policy=opt_out) == ()
    assert reasons(record(owner=user(birth=date(2006, 3, 1))), at=leap_day, policy=opt_out) == (Reason.MINOR,)


def test_adult_cutoff_uses_the_utc_date() -> None:
    evening_in_new_york = datetime(2025, 1, 14, 23, 0, tzinfo=timezone(timedelta(hours=-5)))  # 04:00Z 15 Jan
    assert adult_cutoff(evening_in_new_york, 18) == date(2007, 1, 15)


# --- properties -----------------------------------------------------------------------------------

COUNTRIES = ("US", "DE", "FR", "GB", "BR")
BASE = datetime(2024, 1, 1, tzinfo=UTC)
instants = st.integers(0, 2 * 365).map(lambda d: BASE + timedelta(days=d))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    regions = {"EEA": frozenset({"DE", "FR"}), "UK": frozenset({"GB"})}
    names = (*regions, ANY)

    def rule() -> Rule:
        starts, ends = sorted(draw(st.lists(instants, min_size=2, max_size=2, unique=True)))
        return Rule(
            regions=tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))),
            categories=draw(st.just((ANY,)) | st.lists(st.sampled_from(CATEGORIES), min_size=1).map(tuple)),
            purposes=draw(st.just((ANY,)) | st.lists(st.sampled_from(PURPOSES), min_size=1).map(tuple)),
            mechanism=draw(st.sampled_from(MECHANISMS)),
            starts=draw(st.sampled_from((None, starts))),
            ends=draw(st.sampled_from((None, ends))),
        )

    starts = sorted(draw(st.lists(instants, min_size=1, max_size=3, unique=True)))
    if draw(st.booleans()):
        starts[0] = BASE  # usually something is in force
    base = Rule((ANY,), (ANY,), (ANY,), "opt_out")
    versions = tuple(
        PolicyVersion(
            f"v{i}",
            s,
            (*draw(st.sampled_from(((), (base,)))), *(rule() for _ in range(draw(st.integers(0, 4))))),
        )
        for i, s in enumerate(starts)
    )
    exclusions = HardExclusions(minimum_age=draw(st.sampled_from((16, 18))))
    return Policy("generated", CATEGORIES, PURPOSES, regions, exclusions, versions)


SETTING_KEYS = (
    MASTER_KEY,
    *(category_key(c) for c in CATEGORIES),
    *(purpose_key(p) for p in PURPOSES),
    partner_block_key("acme"),
)


@settings(max_examples=300, deadline=None)
@given(
    policy=policies(),
    at=instants,
    country=st.sampled_from(COUNTRIES),
    birth=st.just(date(1990, 1, 1)) | st.none() | st.dates(date(1950, 1, 1), date(2015, 1, 1)),
    state=st.just("active") | st.sampled_from(("protected", "suspended", "deactivated", "deleted")),
    category=st.sampled_from(CATEGORIES),
    age_of_record=st.integers(-3, 400).map(lambda d: timedelta(days=d)),
    visibility=st.just("public") | st.just("followers"),
    consent=st.dictionaries(st.sampled_from(SETTING_KEYS), st.booleans(), max_size=4),
    purposes=st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True),
    partner=st.sampled_from((None, "acme")),
)
def test_master_toggle_false_is_monotone(
    policy: Policy,
    at: datetime,
    country: str,
    birth: date | None,
    state: str,
    category: str,
    age_of_record: timedelta,
    visibility: str,
    consent: dict[str, bool],
    purposes: list[str],
    partner: str | None,
) -> None:
    rec = RecordFacts(category, UserFacts(1, country, birth, state), at - age_of_record, None, visibility)
    sc = Scope(tuple(purposes), CATEGORIES, partner)
    before = decide(policy, rec, consent, sc, at)
    after = decide(policy, rec, {**consent, MASTER_KEY: False}, sc, at)
    for decision in (before, after):
        assert decision.allowed is (not decision.reasons)
        assert list(decision.reasons) == [r for r in REASON_ORDER if r in decision.reasons]
    # An explicit refusal only ever adds `opted_out`, and never lets anything through.
    assert set(before.reasons) <= set(after.reasons) <= {*before.reasons, Reason.OPTED_OUT}
    assert not after.allowed
    assert after.mechanisms == before.mechanisms
    consulted = any(m != "excluded" for m in after.mechanisms.values())
    event("allowed before the refusal" if before.allowed else "disallowed before the refusal")
    event("consent consulted" if consulted else "consent not consulted")
    assert (Reason.OPTED_OUT in after.reasons) is consulted
    if after.version_id is not None and not consulted:
        assert {Reason.NO_RULE, Reason.REGION_EXCLUDED, Reason.EXCLUDED_BY_POLICY} & set(after.reasons)


def test_asking_for_a_parent_purpose_is_asking_for_every_descendant() -> None:
    policy = inline(
        """
        - region: "*"
          mechanism: opt_out
        - region: EEA
          purposes: [train_ai_system.generative]
          mechanism: excluded
        """
    )
    parent = x(record(owner=user("DE")), sc=scope("train_ai_system"), policy=policy)
    assert not parent.allowed
    assert parent.reasons == (Reason.REGION_EXCLUDED,)
    assert parent.mechanisms == {
        "train_ai_system": "opt_out",
        GENERATIVE: "excluded",
        "train_ai_system.non_generative": "opt_out",
    }
    refused_child = x(
        consent={"purpose.train_ai_system.generative": False}, sc=scope("train_ai_system"), policy=policy
    )
    assert refused_child.reasons == (Reason.PURPOSE_NOT_CONSENTED,)


def test_a_scope_without_purposes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one purpose"):
        decide(X, record(), {}, Scope(purposes=(), categories=CATEGORIES), T)
