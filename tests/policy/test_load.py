"""The policy loader: the example loads, and every kind of bad input is reported where it is.

Every problem is `FILE:LINE:COL: field: what was expected`. Positions are asserted against the place
the offending text sits in the document (found with `where`), so each test reads as "the problem points
at this token".
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from textwrap import dedent, indent

import pytest

from datalease.policy.load import load_policy, load_revision
from datalease.policy.model import ANY, HardExclusions, Policy
from datalease.policy.problems import Problem, ProblemsError

FIXTURES = Path(__file__).parent / "fixtures"

# fmt: off
EEA = {
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
}
# fmt: on


def x_example_text() -> str:
    return files("datalease.examples").joinpath("x-2024.yaml").read_text(encoding="utf-8")


def doc(text: str) -> str:
    return dedent(text).lstrip("\n")


# A small valid policy the bad-input tests start from.
GOOD = doc(
    """
    policy: test
    regions:
      EEA: [DE, FR]
      US: [US]
    versions:
      - id: v1
        effective_from: 2024-01-01
        rules:
          - region: "*"
            mechanism: opt_out
    """
)


def where(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the `occurrence`-th `needle` in `text`."""
    start = -1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, col


def after(text: str, prefix: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) just after the `occurrence`-th `prefix`: where its value starts."""
    line, col = where(text, prefix, occurrence)
    return line, col + len(prefix)


def problems(text: str, source: str = "p.yaml") -> list[Problem]:
    with pytest.raises(ProblemsError) as info:
        load_policy(text, source)
    found = info.value.problems
    assert found, "ProblemsError without problems"
    assert str(info.value) == "\n".join(str(p) for p in found)
    return found


def one_problem(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, "\n".join(str(p) for p in found)
    return found[0]


def check(problem: Problem, at: tuple[int, int], field: str, *fragments: str) -> None:
    assert (problem.line, problem.col) == at, str(problem)
    assert problem.field == field, str(problem)
    for fragment in fragments:
        assert fragment in problem.expected, str(problem)


# --- applied revisions -----------------------------------------------------------------------------


def test_a_revision_is_parsed_once_and_equals_its_text_loaded_afresh() -> None:
    text = x_example_text()
    first = load_revision(90_001, text)
    assert load_revision(90_001, text) is first  # the same revision: no second parse
    assert first == load_policy(text, "policy revision 90001")


def test_a_revision_is_keyed_by_its_text_too() -> None:
    """Two stores in one process may both have a revision 1: each gets the policy of its own text."""
    text = x_example_text()
    other = text.replace("policy: x-platform", "policy: x-platform-other")
    assert other != text
    assert load_revision(90_002, text).name == "x-platform"
    assert load_revision(90_002, other).name == "x-platform-other"


def test_a_revision_whose_text_is_not_a_policy_is_refused_every_time() -> None:
    for _ in range(2):  # a refusal is not cached as if it were a policy
        with pytest.raises(ProblemsError, match="policy revision 90003"):
            load_revision(90_003, "policy: [")


# --- the examples ---------------------------------------------------------------------------------


def test_x_example_loads() -> None:
    policy = load_policy(x_example_text(), "x-2024.yaml")
    assert policy.name == "x-platform"
    assert [v.version_id for v in policy.versions] == ["2023-09", "2024-11"]
    assert [v.effective_from for v in policy.versions] == [
        datetime(2023, 9, 29, tzinfo=UTC),
        datetime(2024, 11, 15, tzinfo=UTC),
    ]
    assert list(policy.regions) == ["EEA", "UK", "CH", "US"]
    # `NO` is Norway, not YAML 1.1's false.
    assert policy.regions["EEA"] == frozenset(EEA)
    assert policy.regions["UK"] == {"GB"}
    assert policy.regions["CH"] == {"CH"}
    assert policy.regions["US"] == {"US"}
    assert policy.region_of("NO") == "EEA"
    assert policy.region_of("BR") == ANY
    assert policy.hard_exclusions == HardExclusions(
        minimum_age=18,
        exclude_unknown_age=True,
        protected_accounts=True,
        account_states=("suspended", "deactivated", "deleted"),
        deleted_content=True,
        non_public_content=True,
    )
    first, second = policy.versions
    assert [(r.regions, r.mechanism) for r in first.rules] == [((ANY,), "excluded")]
    assert [(r.regions, r.categories, r.purposes, r.mechanism) for r in second.rules] == [
        ((ANY,), ("posts", "likes", "reposts", "profile"), (ANY,), "opt_out"),
        ((ANY,), ("bookmarks",), (ANY,), "opt_in"),
        (("EEA",), (ANY,), (ANY,), "excluded"),
    ]
    # Rules remember the line of their `-`, for messages and `policy show`.
    text = x_example_text()
    assert [r.line for r in second.rules] == [
        where(text, '- region: "*"', 2)[0],
        where(text, '- region: "*"', 3)[0],
        where(text, "- region: EEA")[0],
    ]


def test_linkedin_like_policy_loads_with_two_dated_rules() -> None:
    policy = load_policy((FIXTURES / "linkedin-2025.yaml").read_text(encoding="utf-8"), "linkedin-2025.yaml")
    assert list(policy.regions) == ["EEA", "UK", "CH"]
    (version,) = policy.versions
    dated = [r for r in version.rules if r.starts or r.ends]
    cutover = datetime(2025, 11, 3, tzinfo=UTC)
    assert [(r.regions, r.mechanism, r.starts, r.ends) for r in dated] == [
        (("EEA", "UK", "CH"), "excluded", None, cutover),
        (("EEA", "UK", "CH"), "opt_out", cutover, None),
    ]


def test_defaults_when_optional_sections_are_absent() -> None:
    policy = load_policy(GOOD)
    assert policy.description == ""
    assert policy.hard_exclusions == HardExclusions()
    assert policy.categories == ("posts", "likes", "reposts", "bookmarks", "profile")
    (rule,) = policy.versions[0].rules
    assert (rule.categories, rule.purposes, rule.starts, rule.ends) == ((ANY,), (ANY,), None, None)


def test_instants_with_offsets_are_normalised_to_utc() -> None:
    text = GOOD.replace("mechanism: opt_out", "mechanism: opt_out\n        from: 2025-11-03T01:00:00+01:00")
    (rule,) = load_policy(text).versions[0].rules
    assert rule.starts == datetime(2025, 11, 3, tzinfo=UTC)


# --- the document as a whole ----------------------------------------------------------------------


def test_yaml_syntax_error_is_located() -> None:
    text = doc(
        """
        policy: test
          nested: wrong
        versions: []
        """
    )
    problem = one_problem(text)
    check(problem, where(text, ": wrong"), "(document)", "not valid YAML", "mapping values are not allowed")


def test_unclosed_flow_list_is_a_yaml_error() -> None:
    problem = one_problem("policy: test\nversions: [\n")
    assert problem.field == "(document)"
    assert problem.expected.startswith("not valid YAML: ")
    assert problem.line == 3


def test_duplicate_key_is_a_yaml_error_at_the_second_key() -> None:
    text = "policy: a\n" + GOOD.replace("policy: test\n", "") + "policy: b\n"
    problem = one_problem(text)
    check(problem, where(text, "policy: b"), "(document)", 'duplicate key "policy"')


@pytest.mark.parametrize(
    ("text", "got"),
    [("- policy: test\n", "got a list"), ("just words\n", "got 'just words'"), ("", "got nothing")],
)
def test_top_level_must_be_a_mapping(text: str, got: str) -> None:
    problem = one_problem(text)
    check(problem, (1, 1), "(document)", "expected a mapping of keys to values", got)


def test_problem_prints_as_file_line_col_field_expected() -> None:
    text = GOOD + "owner: legal\n"
    problem = one_problem(text)
    line = where(text, "owner:")[0]
    assert str(problem) == (
        f"p.yaml:{line}:1: owner: unknown field; expected one of policy, description, categories, "
        "purposes, regions, hard_exclusions, versions, notice_periods, signals"
    )


def test_source_name_is_the_file_prefix() -> None:
    with pytest.raises(ProblemsError) as info:
        load_policy("[]\n", "policies/x.yaml")
    assert str(info.value).startswith("policies/x.yaml:1:1: (document): ")


def test_missing_policy_name() -> None:
    text = GOOD.replace("policy: test\n", "")
    check(one_problem(text), (1, 1), "policy", "required field is missing")


def test_missing_versions() -> None:
    text = "policy: test\n"
    check(one_problem(text), (1, 1), "versions", "required field is missing")


def test_empty_versions() -> None:
    text = "policy: test\nversions: []\n"
    check(one_problem(text), where(text, "[]"), "versions", "expected at least one version")


def test_a_version_must_be_a_mapping() -> None:
    text = "policy: test\nversions:\n  - v1\n"
    check(one_problem(text), where(text, "v1"), "versions[0]", "expected a mapping", "got 'v1'")


def test_versions_must_be_a_list() -> None:
    text = "policy: test\nversions: v1\n"
    check(one_problem(text), where(text, "v1"), "versions", "expected a list", "got 'v1'")


def test_empty_versions_is_reported_alongside_other_problems() -> None:
    text = "policy: test\nowner: legal\nversions: []\n"
    fields = [p.field for p in problems(text)]
    assert fields == ["owner", "versions"]


def test_unknown_category_and_purpose_in_the_vocabulary_lists() -> None:
    text = GOOD.replace(
        "regions:", "categories: [posts, tweets]\npurposes: [train_ai_system, advertising]\nregions:"
    )
    category, purpose = problems(text)
    check(category, where(text, "tweets"), "categories[1]", "expected one of posts, likes", "got 'tweets'")
    check(purpose, where(text, "advertising"), "purposes[1]", "train_ai_system.generative", "'advertising'")


# --- regions --------------------------------------------------------------------------------------


def test_region_with_a_bad_name() -> None:
    text = GOOD.replace("US: [US]", "North America: [US]")
    check(
        one_problem(text),
        where(text, "North America"),
        "regions.North America",
        "expected a region name of letters, digits, - or _",
    )


@pytest.mark.parametrize("code", ["XX", "de", "DEU", "276"])
def test_unknown_country_code(code: str) -> None:
    text = GOOD.replace("[DE, FR]", f"[DE, {code}]")
    check(
        one_problem(text),
        after(text, "[DE, "),
        "regions.EEA[1]",
        "expected an ISO-3166 alpha-2 country code such as DE",
        repr(code) if code != "276" else "276",
    )


def test_country_in_two_regions() -> None:
    text = GOOD.replace("US: [US]", "US: [US, FR]")
    check(
        one_problem(text),
        where(text, "FR", 2),
        "regions.US[1]",
        "country FR is already in region EEA; a country belongs to one region",
    )


def test_regions_must_be_a_mapping() -> None:
    text = "policy: test\nregions: [EEA]\nversions:\n  - id: v1\n    effective_from: 2024-01-01\n"
    check(one_problem(text), where(text, "[EEA]"), "regions", "expected a mapping", "got a list")


# --- hard exclusions ------------------------------------------------------------------------------


def with_exclusions(body: str) -> str:
    return GOOD + "hard_exclusions:\n" + indent(doc(body), "  ")


@pytest.mark.parametrize(
    ("value", "got"),
    [("12", "got int 12"), ("26", "got int 26"), ("eighteen", "got 'eighteen'"), ("18.5", "18.5")],
)
def test_minimum_age_out_of_range_or_wrong_type(value: str, got: str) -> None:
    text = with_exclusions(f"minimum_age: {value}\n")
    check(
        one_problem(text),
        after(text, "minimum_age: "),
        "hard_exclusions.minimum_age",
        "expected a whole number of years between 13 and 25",
        got,
    )


def test_float_is_described_in_plain_words() -> None:
    problem = one_problem(with_exclusions("minimum_age: 18.5\n"))
    assert problem.expected.endswith("got float 18.5")


@pytest.mark.parametrize("age", [13, 16, 25])
def test_minimum_age_in_range(age: int) -> None:
    policy = load_policy(with_exclusions(f"minimum_age: {age}\n"))
    assert policy.hard_exclusions.minimum_age == age


def test_unknown_age_must_be_exclude_or_allow() -> None:
    text = with_exclusions("unknown_age: maybe\n")
    check(
        one_problem(text),
        where(text, "maybe"),
        "hard_exclusions.unknown_age",
        "expected one of exclude, allow, got 'maybe'",
    )
    allowed = load_policy(with_exclusions("unknown_age: allow\n"))
    assert allowed.hard_exclusions.exclude_unknown_age is False


def test_unknown_account_state() -> None:
    text = with_exclusions("account_states: [suspended, banned]\n")
    check(
        one_problem(text),
        where(text, "banned"),
        "hard_exclusions.account_states[1]",
        "expected one of deleted, deactivated, suspended, got 'banned'",
    )


def test_exclusion_switches_must_be_booleans() -> None:
    text = with_exclusions("protected_accounts: 1\n")
    check(
        one_problem(text),
        after(text, "protected_accounts: "),
        "hard_exclusions.protected_accounts",
        "expected true or false, got int 1",
    )


def test_unknown_exclusion_field() -> None:
    text = with_exclusions("shadow_banned: true\n")
    check(one_problem(text), where(text, "shadow_banned"), "hard_exclusions.shadow_banned", "unknown field")


def test_account_states_subset_is_kept() -> None:
    policy = load_policy(with_exclusions("account_states: [deleted]\n"))
    assert policy.hard_exclusions.account_states == ("deleted",)


def test_empty_account_states_is_not_silently_the_default() -> None:
    text = with_exclusions("account_states: []\n")
    try:
        policy = load_policy(text)
    except ProblemsError as exc:
        assert [p.field for p in exc.problems] == ["hard_exclusions.account_states"]
    else:
        assert policy.hard_exclusions.account_states == ()


# --- versions -------------------------------------------------------------------------------------


def test_version_missing_id_and_effective_from_both_reported() -> None:
    text = doc(
        """
        policy: test
        versions:
          - note: nothing else
        """
    )
    missing_id, missing_from = problems(text)
    check(missing_id, where(text, "note"), "versions[0].id", "required field is missing")
    check(missing_from, where(text, "note"), "versions[0].effective_from", "required field is missing")


@pytest.mark.parametrize("value", ["next week", "'2024-13-01'", "15/11/2024"])
def test_bad_effective_from(value: str) -> None:
    text = GOOD.replace("2024-01-01", value)
    check(
        one_problem(text),
        where(text, value),
        "versions[0].effective_from",
        "expected a date (2024-11-15) or an ISO-8601 date-time",
    )


@pytest.mark.parametrize("value", ["2024-13-01", "2024-02-30"])
def test_impossible_unquoted_date_is_a_problem(value: str) -> None:
    text = GOOD.replace("2024-01-01", value)
    check(one_problem(text), where(text, value), "versions[0].effective_from", "expected a date")


@pytest.mark.parametrize(
    ("old", "field"), [("effective_from: 2024-01-01", "effective_from"), ("from: 2024-02-01", "from")]
)
def test_now_is_not_a_date_in_a_policy_file(old: str, field: str) -> None:
    text = GOOD.replace("mechanism: opt_out", "mechanism: opt_out\n        from: 2024-02-01")
    text = text.replace(old, old.split(":")[0] + ": now")
    assert text.count(": now") == 1
    problem = one_problem(text)
    assert problem.field.endswith("." + field)


def test_duplicate_version_id() -> None:
    text = GOOD + "  - id: v1\n    effective_from: 2024-06-01\n    rules: []\n"
    check(
        one_problem(text),
        after(text, "id: ", 2),
        "versions[1].id",
        "expected a unique id; 'v1' is also versions[0]",
    )


@pytest.mark.parametrize("effective", ["2023-06-01", "2024-01-01"])
def test_versions_out_of_order(effective: str) -> None:
    text = GOOD + f"  - id: v2\n    effective_from: {effective}\n    rules: []\n"
    check(
        one_problem(text),
        after(text, "effective_from: ", 2),
        "versions[1].effective_from",
        "expected a date after the previous version's (2024-01-01); list versions in order",
    )


def test_unknown_version_field() -> None:
    text = GOOD.replace("    rules:", "    author: legal\n    rules:")
    check(one_problem(text), where(text, "author"), "versions[0].author", "unknown field")


# --- rules ----------------------------------------------------------------------------------------


def with_rules(body: str) -> str:
    head = GOOD[: GOOD.index("      - region")]
    return head + "".join("      " + line + "\n" for line in doc(body).splitlines())


def test_rule_with_unknown_region_category_and_purpose() -> None:
    text = with_rules(
        """
        - regions: [EEA, EU]
          categories: [posts, tweets]
          purposes: [ads]
          mechanism: opt_out
        """
    )
    region, category, purpose = problems(text)
    check(region, where(text, "EU]"), "versions[0].rules[0].regions[1]", "expected one of EEA, US or '*'")
    check(category, where(text, "tweets"), "versions[0].rules[0].categories[1]", "got 'tweets'")
    check(purpose, where(text, "ads"), "versions[0].rules[0].purposes[0]", "got 'ads'")


def test_rule_with_unknown_single_region() -> None:
    text = with_rules(
        """
        - region: EU
          mechanism: opt_out
        """
    )
    problem = one_problem(text)
    assert (problem.line, problem.col) == where(text, "EU")
    # A single name is reported as item 0 of the list it stands for.
    assert problem.field.startswith("versions[0].rules[0].region")
    assert "expected one of EEA, US or '*', got 'EU'" in problem.expected


def test_rule_missing_mechanism() -> None:
    text = with_rules(
        """
        - region: EEA
          categories: [posts]
        """
    )
    check(one_problem(text), where(text, "region: EEA"), "versions[0].rules[0].mechanism", "required field")


def test_rule_with_bad_mechanism() -> None:
    text = GOOD.replace("opt_out", "optout")
    check(
        one_problem(text),
        where(text, "optout"),
        "versions[0].rules[0].mechanism",
        "expected one of opt_out, opt_in, excluded, got 'optout'",
    )


@pytest.mark.parametrize("until", ["2024-04-01", "2024-05-01"])
def test_until_not_after_from(until: str) -> None:
    text = with_rules(
        f"""
        - region: EEA
          mechanism: excluded
          from: 2024-05-01
          until: {until}
        """
    )
    check(
        one_problem(text),
        after(text, "until: "),
        "versions[0].rules[0].until",
        "expected a date after from (2024-05-01)",
    )


def test_rule_with_both_region_and_regions() -> None:
    text = with_rules(
        """
        - region: EEA
          regions: [US]
          mechanism: excluded
        """
    )
    check(
        one_problem(text),
        where(text, "regions: [US]"),
        "versions[0].rules[0].regions",
        "expected either region or regions, not both",
    )


def test_unknown_rule_field() -> None:
    text = with_rules(
        """
        - region: EEA
          partner: acme
          mechanism: excluded
        """
    )
    check(
        one_problem(text),
        where(text, "partner"),
        "versions[0].rules[0].partner",
        "unknown field; expected one of region, regions, categories, purposes, mechanism, from, until",
    )


@pytest.mark.parametrize("field", ["categories", "purposes", "regions"])
def test_empty_list_in_a_rule_is_a_problem(field: str) -> None:
    text = with_rules(
        f"""
        - {field}: []
          mechanism: opt_out
        """
    )
    found = problems(text)
    assert [p.field for p in found] == [f"versions[0].rules[0].{field}"]


# --- overlapping rules ----------------------------------------------------------------------------


TWO_EEA_RULES = """
- region: EEA
  mechanism: excluded{first}
- region: EEA
  mechanism: opt_out{second}
"""


def test_equal_specificity_overlap_names_both_lines() -> None:
    text = with_rules(TWO_EEA_RULES.format(first="", second=""))
    first_line = where(text, "- region: EEA")[0]
    second_line = where(text, "- region: EEA", 2)[0]
    problem = one_problem(text)
    check(
        problem,
        where(text, "region: EEA", 2),
        "versions[0].rules[1]",
        f"rule at line {second_line} overlaps rule at line {first_line}",
        "for region EEA",
        "with the same specificity",
        "more specific or their from/until windows to be disjoint",
    )


def test_equal_specificity_with_overlapping_windows_is_rejected() -> None:
    text = with_rules(TWO_EEA_RULES.format(first="\n  until: 2025-11-04", second="\n  from: 2025-11-03"))
    assert "overlaps rule at line" in one_problem(text).expected


def test_equal_specificity_with_disjoint_windows_is_fine() -> None:
    text = with_rules(TWO_EEA_RULES.format(first="\n  until: 2025-11-03", second="\n  from: 2025-11-03"))
    rules = load_policy(text).versions[0].rules
    assert [r.mechanism for r in rules] == ["excluded", "opt_out"]


def test_one_more_specific_rule_is_fine() -> None:
    text = with_rules(
        """
        - region: EEA
          mechanism: excluded
        - region: EEA
          purposes: [train_ai_system]
          mechanism: opt_out
        - region: "*"
          categories: [posts]
          mechanism: opt_out
        """
    )
    assert len(load_policy(text).versions[0].rules) == 3


def test_overlap_through_a_shared_region_of_a_region_list() -> None:
    text = with_rules(
        """
        - regions: [EEA, US]
          mechanism: opt_out
        - region: US
          mechanism: opt_in
        """
    )
    assert "for region US" in one_problem(text).expected


# --- many problems at once ------------------------------------------------------------------------


def test_every_problem_is_reported_sorted_by_line() -> None:
    text = doc(
        """
        policy: messy
        versions:
          - id: v1
            effective_from: 2024-01-01
            rules:
              - region: Mars
                mechanism: optout
          - id: v1
            effective_from: soon
        regions:
          EEA: [DE, xx]
          US: [US, DE]
        hard_exclusions:
          minimum_age: 9
        colour: blue
        """
    )
    found = problems(text)
    assert [(p.line, p.field) for p in found] == [
        (where(text, "Mars")[0], "versions[0].rules[0].region"),
        (where(text, "optout")[0], "versions[0].rules[0].mechanism"),
        (where(text, "id: v1", 2)[0], "versions[1].id"),
        (where(text, "soon")[0], "versions[1].effective_from"),
        (where(text, "xx")[0], "regions.EEA[1]"),
        (where(text, "DE]")[0], "regions.US[1]"),
        (where(text, "9\n")[0], "hard_exclusions.minimum_age"),
        (where(text, "colour")[0], "colour"),
    ]
    assert [p.line for p in found] == sorted(p.line for p in found)


def test_loaded_policy_is_plain_data() -> None:
    policy = load_policy(x_example_text())
    assert isinstance(policy, Policy)
    with pytest.raises(AttributeError):
        policy.name = "other"  # type: ignore[misc]
