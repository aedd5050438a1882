"""Rule resolution shared by both compilers: which mechanism applies, and why a record is out.

`decide` evaluates these per record; `compile` evaluates them per region at compile time and emits
the outcome as SQL. Keeping the logic here is what makes the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from datalease.policy.model import ANY, Policy, PolicyVersion, Rule, Scope
from datalease.policy.vocabulary import Reason, purpose_family, purpose_lineage


@dataclass(frozen=True)
class Outcome:
    """The mechanism in force for one (region, category, purpose), or the reason nothing may flow."""

    mechanism: str  # opt_out | opt_in | excluded
    reason: str | None  # set when mechanism is excluded: region_excluded, excluded_by_policy, no_rule
    rule: Rule | None


def specificity(rule: Rule, region: str, category: str, purpose: str) -> tuple[int, int, int] | None:
    """Rank of `rule` for the triple, or None when it does not apply. Higher wins; region counts most."""
    depth = rule.purpose_depth(purpose)
    if depth is None or not rule.covers_region(region) or not rule.covers_category(category):
        return None
    return (0 if ANY in rule.regions else 1, depth, 0 if ANY in rule.categories else 1)


def winning_rule(
    version: PolicyVersion, region: str, category: str, purpose: str, at: datetime
) -> Rule | None:
    best: tuple[tuple[int, int, int], Rule] | None = None
    for rule in version.rules:
        if not rule.active_at(at):
            continue
        rank = specificity(rule, region, category, purpose)
        if rank is not None and (best is None or rank > best[0]):
            best = (rank, rule)
    return best[1] if best else None


def outcome(
    policy: Policy, version: PolicyVersion, region: str, category: str, purpose: str, at: datetime
) -> Outcome:
    """What the policy says for one (region, category, purpose). What it does not list never flows."""
    if category not in policy.categories or not any(p in policy.purposes for p in purpose_lineage(purpose)):
        return Outcome("excluded", Reason.NOT_IN_POLICY, None)
    rule = winning_rule(version, region, category, purpose, at)
    if rule is None:
        return Outcome("excluded", Reason.NO_RULE, None)
    if rule.mechanism == "excluded":
        reason = Reason.EXCLUDED_BY_POLICY if ANY in rule.regions else Reason.REGION_EXCLUDED
        return Outcome("excluded", reason, rule)
    return Outcome(rule.mechanism, None, rule)


def adult_cutoff(at: datetime, minimum_age: int) -> date:
    """Latest birth date of someone who has reached `minimum_age` on the UTC date of `at`."""
    day = at.astimezone(UTC).date()
    try:
        return day.replace(year=day.year - minimum_age)
    except ValueError:  # 29 February in a non-leap target year: the birthday falls on 28 February
        return day.replace(year=day.year - minimum_age, day=28)


def scope_purposes(scope: Scope) -> tuple[str, ...]:
    """The purposes a scope asks for, each with the purposes it covers; a scope must name one."""
    if not scope.purposes:
        raise ValueError("scope.purposes: expected at least one purpose")
    out: list[str] = []
    for purpose in scope.purposes:
        out += [p for p in purpose_family(purpose) if p not in out]
    return tuple(out)


def region_in_scope(region: str, allowed: tuple[str, ...] | None, denied: tuple[str, ...]) -> bool:
    if region in denied:
        return False
    return allowed is None or region in allowed


def all_regions(policy: Policy) -> tuple[str, ...]:
    """Every named region plus ANY, the region of countries no named region lists."""
    return (*policy.regions.keys(), ANY)
