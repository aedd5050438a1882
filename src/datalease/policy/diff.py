"""Human-readable differences between two policies, and one-line descriptions of rules."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, time

from datalease.policy.model import ANY, Policy, PolicyVersion, Rule
from datalease.policy.notices import notice_changes

RuleMeaning = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str, datetime | None, datetime | None]


def _instant_text(value: datetime | None) -> str:
    if value is None:
        return "…"
    return value.date().isoformat() if value.timetz().replace(tzinfo=None) == time(0) else value.isoformat()


def describe_rule(rule: Rule) -> str:
    def names(values: tuple[str, ...], every: str) -> str:
        return every if ANY in values else ", ".join(sorted(values))

    window = (
        f" [{_instant_text(rule.starts)} → {_instant_text(rule.ends)})" if rule.starts or rule.ends else ""
    )
    return (
        f"{names(rule.regions, 'every region')} · {names(rule.categories, 'every category')} · "
        f"{names(rule.purposes, 'every purpose')} → {rule.mechanism}{window}"
    )


def rule_meaning(rule: Rule) -> RuleMeaning:
    """What a rule says, independent of the order its names were written in or where it sits."""
    return (
        tuple(sorted(rule.regions)),
        tuple(sorted(rule.categories)),
        tuple(sorted(rule.purposes)),
        rule.mechanism,
        rule.starts,
        rule.ends,
    )


def _set_change(label: str, old: set[str], new: set[str]) -> list[str]:
    out = [f"{label}: + {item}" for item in sorted(new - old)]
    out += [f"{label}: - {item}" for item in sorted(old - new)]
    return out


def _same_rules(old: PolicyVersion, new: PolicyVersion) -> bool:
    return sorted(map(rule_meaning, old.rules), key=repr) == sorted(map(rule_meaning, new.rules), key=repr)


def _version_changes(old: PolicyVersion, new: PolicyVersion) -> list[str]:
    label = f"version {new.version_id}"
    out: list[str] = []
    if old.effective_from != new.effective_from:
        out.append(
            f"{label}: effective_from {_instant_text(old.effective_from)} → {_instant_text(new.effective_from)}"
        )
    if not _same_rules(old, new):
        out += _set_change(
            f"{label} rule", {describe_rule(r) for r in old.rules}, {describe_rule(r) for r in new.rules}
        )
    return out


def diff_policies(old: Policy, new: Policy) -> list[str]:
    """Every change from `old` to `new`, one line each; empty when they mean the same."""
    out: list[str] = []
    if old.name != new.name:
        out.append(f"policy: {old.name} → {new.name}")
    out += _set_change("category", set(old.categories), set(new.categories))
    out += _set_change("purpose", set(old.purposes), set(new.purposes))
    out += _set_change("region", set(old.regions), set(new.regions))
    for region in sorted(set(old.regions) & set(new.regions)):
        out += _set_change(f"region {region}", set(old.regions[region]), set(new.regions[region]))
    for item in fields(old.hard_exclusions):
        before, after = getattr(old.hard_exclusions, item.name), getattr(new.hard_exclusions, item.name)
        if item.name == "account_states":
            before, after = tuple(sorted(before)), tuple(sorted(after))
        if before != after:
            out.append(f"hard_exclusions.{item.name}: {before} → {after}")
    old_versions = {v.version_id: v for v in old.versions}
    new_versions = {v.version_id: v for v in new.versions}
    for version_id, version in new_versions.items():
        if version_id not in old_versions:
            out.append(
                f"version {version_id}: + effective {_instant_text(version.effective_from)}, {len(version.rules)} rules"
            )
        else:
            out += _version_changes(old_versions[version_id], version)
    out += [f"version {vid}: - removed" for vid in old_versions if vid not in new_versions]
    return out


def retroactive_changes(stored: Policy, new: Policy, now: datetime) -> list[str]:
    """What applying `new` would change about the past: history up to `now` is immutable.

    Flags a version in force that would be removed or changed, a new version dated at or before
    `now`, and a stored future version moved to a date at or before `now`.
    """
    stored_versions = {v.version_id: v for v in stored.versions}
    new_versions = {v.version_id: v for v in new.versions}
    out: list[str] = []
    for version in stored.versions:
        replacement = new_versions.get(version.version_id)
        if version.effective_from <= now:
            if replacement is None:
                out.append(f"version {version.version_id} is in force and would be removed")
            elif replacement.effective_from != version.effective_from or not _same_rules(
                version, replacement
            ):
                out.append(f"version {version.version_id} is in force and would be changed")
        elif replacement is not None and replacement.effective_from <= now:
            out.append(
                f"version {version.version_id} would move into the past ({_instant_text(replacement.effective_from)})"
            )
    for version in new.versions:
        if version.version_id not in stored_versions and version.effective_from <= now:
            out.append(
                f"version {version.version_id} is new but dated {_instant_text(version.effective_from)}, "
                "not after now: new versions must take effect in the future"
            )
    return out + notice_changes(stored, new, now)  # issue 15
