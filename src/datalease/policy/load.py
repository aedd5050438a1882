"""YAML text → Policy, with every problem reported as FILE:LINE:COL: field: what was expected."""

from __future__ import annotations

import functools
import re
from itertools import combinations

import pycountry
from ruamel.yaml.comments import CommentedMap

from datalease.policy.documents import read_document
from datalease.policy.model import ANY, HardExclusions, Policy, PolicyVersion, Rule
from datalease.policy.notice_load import check_notice_periods, read_notice, read_periods, read_signals
from datalease.policy.problems import Reader, describe, join
from datalease.policy.resolve import specificity
from datalease.policy.vocabulary import ACCOUNT_STATE_REASONS, CATEGORIES, MECHANISMS, PURPOSES

TOP_KEYS = (
    *("policy", "description", "categories", "purposes", "regions", "hard_exclusions", "versions"),
    *("notice_periods", "signals"),  # issue 15
)
EXCLUSION_KEYS = (
    "minimum_age",
    "unknown_age",
    "protected_accounts",
    "account_states",
    "deleted_content",
    "non_public_content",
)
VERSION_KEYS = ("id", "effective_from", "note", "rules", "notice")
RULE_KEYS = ("region", "regions", "categories", "purposes", "mechanism", "from", "until")
REGION_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries)


def load_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate a policy document. Raises ProblemsError listing every problem found."""
    reader, root = read_document(text, source, TOP_KEYS)
    reader.required(root, "policy", "")
    name = reader.string(root, "policy", "")
    categories = reader.names(root, "categories", "", CATEGORIES, allow_empty=False) or CATEGORIES
    purposes = reader.names(root, "purposes", "", PURPOSES, allow_empty=False) or PURPOSES
    regions = _regions(reader, root)
    exclusions = _hard_exclusions(reader, root)
    versions = _versions(reader, root, categories, purposes, tuple(regions))
    periods = read_periods(reader, root, tuple(regions))
    signals = read_signals(reader, root, tuple(regions), purposes)
    reader.raise_if_any()
    policy = Policy(
        name=name,
        description=reader.string(root, "description", ""),
        categories=categories,
        purposes=purposes,
        regions=regions,
        hard_exclusions=exclusions,
        versions=versions,
        notice_periods=periods,
        signals=signals,
    )
    check_notice_periods(reader, root, policy)
    reader.raise_if_any()
    return policy


@functools.lru_cache(maxsize=16)
def load_revision(revision_id: int, text: str) -> Policy:
    """An applied revision's policy, parsed once per process: a revision's text never changes, and
    parsing it (~0.1–0.2 s of YAML) was most of a settings call's time (issue 16). Keyed by the text
    too, so two stores in one process never get each other's policy."""
    return load_policy(text, f"policy revision {revision_id}")


def _regions(reader: Reader, root: CommentedMap) -> dict[str, frozenset[str]]:
    if root.get("regions") is None:
        return {}
    node = reader.mapping(root["regions"], "regions", reader.value_position(root, "regions"))
    if node is None:
        return {}
    regions: dict[str, frozenset[str]] = {}
    owner: dict[str, str] = {}
    for region in node:
        field = join("regions", region)
        if not isinstance(region, str) or not REGION_NAME_RE.match(region):
            reader.report(
                reader.key_position(node, region), field, "expected a region name of letters, digits, - or _"
            )
            continue
        countries: set[str] = set()
        for index, code, position in reader.items(node, region, "regions"):
            item_field = f"{field}[{index}]"
            if not isinstance(code, str) or code not in COUNTRY_CODES:
                reader.report(
                    position,
                    item_field,
                    f"expected an ISO-3166 alpha-2 country code such as DE, got {describe(code)}",
                )
            elif code in owner:
                reader.report(
                    position,
                    item_field,
                    f"country {code} is already in region {owner[code]}; a country belongs to one region",
                )
            else:
                owner[code] = region
                countries.add(code)
        regions[region] = frozenset(countries)
    return regions


def _hard_exclusions(reader: Reader, root: CommentedMap) -> HardExclusions:
    defaults = HardExclusions()
    if root.get("hard_exclusions") is None:
        return defaults
    node = reader.mapping(
        root["hard_exclusions"], "hard_exclusions", reader.value_position(root, "hard_exclusions")
    )
    if node is None:
        return defaults
    field = "hard_exclusions"
    reader.known_keys(node, field, EXCLUSION_KEYS)
    minimum_age = reader.scalar(
        node, "minimum_age", field, _age, "a whole number of years between 13 and 25", defaults.minimum_age
    )
    unknown_age = reader.choice(node, "unknown_age", field, ("exclude", "allow")) or "exclude"
    states = reader.names(node, "account_states", field, tuple(ACCOUNT_STATE_REASONS))
    if states is None:
        states = defaults.account_states
    return HardExclusions(
        minimum_age=minimum_age,
        exclude_unknown_age=unknown_age == "exclude",
        protected_accounts=reader.boolean(node, "protected_accounts", field, defaults.protected_accounts),
        account_states=states,
        deleted_content=reader.boolean(node, "deleted_content", field, defaults.deleted_content),
        non_public_content=reader.boolean(node, "non_public_content", field, defaults.non_public_content),
    )


def _age(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 13 <= value <= 25:
        return value
    raise ValueError(value)


def _versions(
    reader: Reader,
    root: CommentedMap,
    categories: tuple[str, ...],
    purposes: tuple[str, ...],
    regions: tuple[str, ...],
) -> tuple[PolicyVersion, ...]:
    if not reader.required(root, "versions", ""):
        return ()
    versions: list[PolicyVersion] = []
    seen_ids: dict[str, int] = {}
    for index, item, position in reader.items(root, "versions", ""):
        field = f"versions[{index}]"
        node = reader.mapping(item, field, position)
        if node is None:
            continue
        reader.known_keys(node, field, VERSION_KEYS)
        ok = reader.required(node, "id", field) & reader.required(node, "effective_from", field)
        version_id = reader.string(node, "id", field)
        effective = reader.instant(node, "effective_from", field)
        if version_id in seen_ids:
            reader.report(
                reader.value_position(node, "id"),
                f"{field}.id",
                f"expected a unique id; {describe(version_id)} is also versions[{seen_ids[version_id]}]",
            )
        seen_ids.setdefault(version_id, index)
        if versions and effective is not None and effective <= versions[-1].effective_from:
            reader.report(
                reader.value_position(node, "effective_from"),
                f"{field}.effective_from",
                f"expected a date after the previous version's ({versions[-1].effective_from.date()}); list versions in order",
            )
            ok = False
        rules = tuple(
            rule
            for rule_index, rule_item, rule_position in reader.items(node, "rules", field)
            if (
                rule := _rule(
                    reader,
                    rule_item,
                    f"{field}.rules[{rule_index}]",
                    rule_position,
                    categories,
                    purposes,
                    regions,
                )
            )
        )
        _check_overlaps(reader, rules, field, categories, purposes, regions)
        if ok and effective is not None:
            note = reader.string(node, "note", field)
            notice = read_notice(reader, node, field)
            versions.append(PolicyVersion(version_id, effective, rules, note, notice))
    if isinstance(root.get("versions"), list) and not root["versions"]:
        reader.report(reader.value_position(root, "versions"), "versions", "expected at least one version")
    return tuple(versions)


def _rule(
    reader: Reader,
    item: object,
    field: str,
    position: tuple[int, int],
    categories: tuple[str, ...],
    purposes: tuple[str, ...],
    regions: tuple[str, ...],
) -> Rule | None:
    node = reader.mapping(item, field, position)
    if node is None:
        return None
    reader.known_keys(node, field, RULE_KEYS)
    count = len(reader.problems)
    if "region" in node and "regions" in node:
        reader.report(
            reader.key_position(node, "regions"),
            f"{field}.regions",
            "expected either region or regions, not both",
        )
    rule_regions = reader.names(
        node, "region", field, regions, any_word=ANY, allow_empty=False
    ) or reader.names(node, "regions", field, regions, any_word=ANY, allow_empty=False)
    rule_categories = reader.names(node, "categories", field, categories, any_word=ANY, allow_empty=False)
    rule_purposes = reader.names(node, "purposes", field, purposes, any_word=ANY, allow_empty=False)
    reader.required(node, "mechanism", field)
    mechanism = reader.choice(node, "mechanism", field, MECHANISMS)
    starts = reader.instant(node, "from", field)
    ends = reader.instant(node, "until", field)
    if starts is not None and ends is not None and ends <= starts:
        reader.report(
            reader.value_position(node, "until"),
            f"{field}.until",
            f"expected a date after from ({starts.date()})",
        )
    if len(reader.problems) > count or mechanism is None:
        return None
    return Rule(
        regions=rule_regions or (ANY,),
        categories=rule_categories or (ANY,),
        purposes=rule_purposes or (ANY,),
        mechanism=mechanism,
        starts=starts,
        ends=ends,
        line=position[0] + 1,
        col=position[1] + 1,
        index=int(field.rsplit("[", 1)[-1].rstrip("]")),
    )


def _windows_overlap(a: Rule, b: Rule) -> bool:
    latest_start = max((s for s in (a.starts, b.starts) if s is not None), default=None)
    earliest_end = min((e for e in (a.ends, b.ends) if e is not None), default=None)
    return latest_start is None or earliest_end is None or latest_start < earliest_end


def _check_overlaps(
    reader: Reader,
    rules: tuple[Rule, ...],
    field: str,
    categories: tuple[str, ...],
    purposes: tuple[str, ...],
    regions: tuple[str, ...],
) -> None:
    """Two rules that could both win for the same record at the same time make the policy ambiguous."""
    for first, second in combinations(rules, 2):
        if not _windows_overlap(first, second):
            continue
        for region in (*regions, ANY):
            clash = next(
                (
                    (category, purpose)
                    for category in categories
                    for purpose in purposes
                    if (rank := specificity(first, region, category, purpose)) is not None
                    and rank == specificity(second, region, category, purpose)
                ),
                None,
            )
            if clash is not None:
                reader.report(
                    (second.line - 1, second.col - 1),
                    f"{field}.rules[{second.index}]",
                    f"rule at line {second.line} overlaps rule at line {first.line} for region {region}, "
                    f"{clash[0]}, {clash[1]} with the same specificity; expected one to be more specific "
                    "or their from/until windows to be disjoint",
                )
                break
