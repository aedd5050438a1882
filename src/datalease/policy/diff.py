"""Human-readable differences between two policies, and one-line descriptions of rules."""

from __future__ import annotations

from dataclasses import fields

from datalease.policy.model import ANY, Policy, PolicyVersion, Rule


def describe_rule(rule: Rule) -> str:
    def names(values: tuple[str, ...], every: str) -> str:
        return every if ANY in values else ", ".join(values)

    window = ""
    if rule.starts or rule.ends:
        start = rule.starts.date().isoformat() if rule.starts else "…"
        end = rule.ends.date().isoformat() if rule.ends else "…"
        window = f" [{start} → {end})"
    return (
        f"{names(rule.regions, 'every region')} · {names(rule.categories, 'every category')} · "
        f"{names(rule.purposes, 'every purpose')} → {rule.mechanism}{window}"
    )


def _set_change(label: str, old: set[str], new: set[str]) -> list[str]:
    out = [f"{label}: + {item}" for item in sorted(new - old)]
    out += [f"{label}: - {item}" for item in sorted(old - new)]
    return out


def _version_changes(old: PolicyVersion, new: PolicyVersion) -> list[str]:
    label = f"version {new.version_id}"
    out: list[str] = []
    if old.effective_from != new.effective_from:
        out.append(f"{label}: effective_from {old.effective_from.date()} → {new.effective_from.date()}")
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
        if before != after:
            out.append(f"hard_exclusions.{item.name}: {before} → {after}")
    old_versions = {v.version_id: v for v in old.versions}
    new_versions = {v.version_id: v for v in new.versions}
    for version_id, version in new_versions.items():
        if version_id not in old_versions:
            out.append(
                f"version {version_id}: + effective {version.effective_from.date()}, {len(version.rules)} rules"
            )
        else:
            out += _version_changes(old_versions[version_id], version)
    out += [f"version {vid}: - removed" for vid in old_versions if vid not in new_versions]
    return out


def retroactive_changes(stored: Policy, new: Policy, now_effective: set[str]) -> list[str]:
    """Changes `new` would make to versions already in force (listed in `now_effective`)."""
    new_versions = {v.version_id: v for v in new.versions}
    out: list[str] = []
    for version in stored.versions:
        if version.version_id not in now_effective:
            continue
        replacement = new_versions.get(version.version_id)
        if replacement is None:
            out.append(f"version {version.version_id} is in force and would be removed")
        elif replacement.effective_from != version.effective_from or {
            describe_rule(r) for r in replacement.rules
        } != {describe_rule(r) for r in version.rules}:
            out.append(f"version {version.version_id} is in force and would be changed")
    return out
