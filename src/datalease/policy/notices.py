"""Notices and notice periods: what a policy version turns on by default, by when people must be told,
and the `not_notified` rule both compilers apply.

A version *turns on* a (region, category, purpose) when its outcome there is `opt_out` (shared unless the
person says no) while the previous state was not (`opt_in`, `excluded`, or no version at all). A policy
that declares `notice_periods` must announce every such change with a notice published at least the
region's period before; with `require_notification: true`, a person whose first notice delivery was not
recorded by that deadline keeps the previous default for what the version turned on (`not_notified`).
Whether a person was notified in time is a fact about them, computed outside the policy
(`notified_versions`) and handed to both compilers as the setting `notified.<version>` = true.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from datalease.policy.model import ANY, NoticeText, Policy, PolicyVersion
from datalease.policy.resolve import all_regions, outcome

NOTIFIED_PREFIX = "notified."
JUST_BEFORE = timedelta(microseconds=1)


def notified_key(version_id: str) -> str:
    """The derived setting that says the person was notified of `version_id` in time."""
    return f"{NOTIFIED_PREFIX}{version_id}"


def text_sha256(title: str, text: str) -> str:
    """The identity of one locale's notice: sha256 of `title`, a blank line, `text` (UTF-8)."""
    return hashlib.sha256(f"{title}\n\n{text}".encode()).hexdigest()


def notice_sha256(texts: tuple[NoticeText, ...]) -> str:
    """The identity of the whole notice: sha256 of the canonical JSON of every locale's title and text."""
    body = {t.locale: {"title": t.title, "text": t.text} for t in texts}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def period_days(policy: Policy, region: str) -> int | None:
    """Days of notice the policy asks for in `region` (its own entry, else `"*"`); None: none declared."""
    periods = policy.notice_periods
    return periods.get(region, periods.get(ANY))


def previous_version(policy: Policy, version: PolicyVersion) -> PolicyVersion | None:
    before = [v for v in policy.versions if v.effective_from < version.effective_from]
    return before[-1] if before else None


def mechanism_at(policy: Policy, region: str, category: str, purpose: str, at: datetime) -> str:
    version = policy.version_at(at)
    if version is None:
        return "excluded"
    return outcome(policy, version, region, category, purpose, at).mechanism


@dataclass(frozen=True)
class TurnedOn:
    """One (region, category, purpose) a change turns on by default at `at`."""

    at: datetime
    region: str
    category: str
    purpose: str


def change_instants(policy: Policy, version: PolicyVersion) -> tuple[datetime, ...]:
    """When `version` can change a default: its start and every rule `from` inside its lifetime."""
    following = policy.next_version_after(version.effective_from)
    end = following.effective_from if following else None
    inside = {
        r.starts
        for r in version.rules
        if r.starts is not None and r.starts > version.effective_from and (end is None or r.starts < end)
    }
    return (version.effective_from, *sorted(inside))


def turned_on(policy: Policy, version: PolicyVersion) -> list[TurnedOn]:
    """Every default `version` switches to opt_out, at each of its change instants."""
    found: list[TurnedOn] = []
    for at in change_instants(policy, version):
        for region in all_regions(policy):
            for category in policy.categories:
                for purpose in policy.purposes:
                    now = mechanism_at(policy, region, category, purpose, at)
                    if (
                        now == "opt_out"
                        and mechanism_at(policy, region, category, purpose, at - JUST_BEFORE) != "opt_out"
                    ):
                        found.append(TurnedOn(at, region, category, purpose))
    return found


def notification_deadline(policy: Policy, version: PolicyVersion, region: str) -> datetime:
    """The instant by which a person in `region` must have been notified of `version`."""
    return version.effective_from - timedelta(days=period_days(policy, region) or 0)


def notified_versions(
    policy: Policy, region: str, first_deliveries: Mapping[str, datetime], at: datetime
) -> frozenset[str]:
    """The versions requiring notification of which the person was notified in time (as of `at`)."""
    out: set[str] = set()
    for version in policy.versions:
        if version.notice is None or not version.notice.require_notification:
            continue
        delivered = first_deliveries.get(version.version_id)
        if delivered is not None and delivered <= min(notification_deadline(policy, version, region), at):
            out.add(version.version_id)
    return frozenset(out)


@dataclass(frozen=True)
class NotificationRule:
    """Where `not_notified` can hold for one (category, purpose) under a version: the regions whose
    default the version turned on, and among them those where the previous default was opt_in (an
    explicit opt-in of the category still counts there)."""

    version_id: str
    regions: tuple[str, ...]
    previously_opt_in: tuple[str, ...]


def notification_rule(
    policy: Policy, version: PolicyVersion, category: str, purpose: str, at: datetime
) -> NotificationRule | None:
    """The `not_notified` rule for (category, purpose) at `at` under `version`, or None when none applies."""
    if version.notice is None or not version.notice.require_notification:
        return None
    before = version.effective_from - JUST_BEFORE
    regions: list[str] = []
    opt_in: list[str] = []
    for region in all_regions(policy):
        if outcome(policy, version, region, category, purpose, at).mechanism != "opt_out":
            continue
        previous = mechanism_at(policy, region, category, purpose, before)
        if previous == "opt_out":
            continue
        regions.append(region)
        if previous == "opt_in":
            opt_in.append(region)
    return NotificationRule(version.version_id, tuple(regions), tuple(opt_in)) if regions else None


def not_notified(
    rule: NotificationRule | None, region: str, consent: Mapping[str, bool], category_key: str
) -> bool:
    """Whether a person in `region` with these settings keeps the previous default (`decide`'s side)."""
    if rule is None or region not in rule.regions or consent.get(notified_key(rule.version_id)) is True:
        return False
    return not (region in rule.previously_opt_in and consent.get(category_key) is True)


def notice_changes(stored: Policy, new: Policy, now: datetime) -> list[str]:
    """A notice already published is history: `policy apply` refuses to change or remove it."""
    replacements = {v.version_id: v for v in new.versions}
    out: list[str] = []
    for version in stored.versions:
        notice = version.notice
        if notice is None or notice.published > now or version.version_id not in replacements:
            continue
        other = replacements[version.version_id].notice
        if other is None or (other.sha256, other.published) != (notice.sha256, notice.published):
            out.append(
                f"version {version.version_id}'s notice was published on {notice.published.date()} "
                f"and would be {'removed' if other is None else 'changed'}"
            )
    return out
