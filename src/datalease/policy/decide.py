"""The point compiler: may this one record go to this scope at time T, and if not, why."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from datalease.policy.model import Decision, Policy, RecordFacts, Scope
from datalease.policy.notices import not_notified, notification_rule
from datalease.policy.orders import order_reasons
from datalease.policy.post_choices import post_reasons
from datalease.policy.resolve import adult_cutoff, outcome, region_in_scope, scope_purposes
from datalease.policy.signals import refused_by_signal
from datalease.policy.vocabulary import (
    ACCOUNT_STATE_REASONS,
    MASTER_KEY,
    REASON_ORDER,
    Reason,
    category_key,
    partner_block_key,
    purpose_key,
    purpose_lineage,
)


def hard_exclusion_reasons(policy: Policy, record: RecordFacts, at: datetime) -> set[str]:
    """Reasons no consent setting can override."""
    rules = policy.hard_exclusions
    owner = record.owner
    reasons: set[str] = set()
    state_reason = ACCOUNT_STATE_REASONS.get(owner.account_state)
    if state_reason and owner.account_state in rules.account_states:
        reasons.add(state_reason)
    if rules.protected_accounts and owner.account_state == "protected":
        reasons.add(Reason.PROTECTED_ACCOUNT)
    if owner.birth_date is None:
        if rules.exclude_unknown_age:
            reasons.add(Reason.AGE_UNKNOWN)
    elif owner.birth_date > adult_cutoff(at, rules.minimum_age):
        reasons.add(Reason.MINOR)
    if rules.deleted_content and record.deleted_at is not None and record.deleted_at <= at:
        reasons.add(Reason.CONTENT_DELETED)
    if rules.non_public_content and record.visibility != "public":
        reasons.add(Reason.NOT_PUBLIC)
    if record.created_at > at:
        reasons.add(Reason.NOT_YET_CREATED)
    return reasons


def scope_reasons(scope: Scope, region: str, record: RecordFacts) -> set[str]:
    reasons: set[str] = set()
    if not region_in_scope(region, scope.regions_allowed, scope.regions_denied):
        reasons.add(Reason.OUTSIDE_AGREEMENT_REGIONS)
    if (scope.content_from is not None and record.created_at < scope.content_from) or (
        scope.content_until is not None and record.created_at >= scope.content_until
    ):
        reasons.add(Reason.OUTSIDE_CONTENT_WINDOW)
    return reasons


def consent_reasons(
    consent: Mapping[str, bool], category: str, purpose: str, mechanism: str, partner: str | None
) -> set[str]:
    """What the owner's own settings say, under an opt_out or opt_in mechanism.

    An explicit `false` on the master toggle or the category always wins. Under opt_in the category
    needs an explicit `true` of its own. A purpose refused (or one of its ancestors) blocks it; a
    blocked partner is blocked whatever the mechanism.
    """
    reasons: set[str] = set()
    category_choice = consent.get(category_key(category))
    if consent.get(MASTER_KEY) is False or category_choice is False:
        reasons.add(Reason.OPTED_OUT)
    if mechanism == "opt_in" and category_choice is not True:
        reasons.add(Reason.OPT_IN_REQUIRED)
    if any(consent.get(purpose_key(p)) is False for p in purpose_lineage(purpose)):
        reasons.add(Reason.PURPOSE_NOT_CONSENTED)
    if partner is not None and consent.get(partner_block_key(partner)) is True:
        reasons.add(Reason.PARTNER_BLOCKED)
    return reasons


def decide(
    policy: Policy,
    record: RecordFacts,
    consent: Mapping[str, bool],
    scope: Scope,
    at: datetime,
    *,
    policy_at: datetime | None = None,
) -> Decision:
    """Decide one record. `consent` holds the owner's explicit settings as of `at` (absent = never set).

    `policy_at` (default `at`) is the instant whose policy version and rule windows apply, while the
    facts — the record's dates, the owner's age, their settings — are taken at `at`: a withdrawal
    judges today's facts under the policy the partner's release was built with.
    """
    rules_at = at if policy_at is None else policy_at
    purposes = scope_purposes(scope)
    region = policy.region_of(record.owner.country)
    reasons = hard_exclusion_reasons(policy, record, at) | scope_reasons(scope, region, record)
    reasons |= order_reasons(policy, record, purposes, at)  # regulator orders: policy/orders.py
    version = policy.version_at(rules_at)
    mechanisms: dict[str, str] = {}
    if version is None:
        reasons.add(Reason.BEFORE_POLICY_EFFECTIVE)
    else:
        for purpose in purposes:
            result = outcome(policy, version, region, record.category, purpose, rules_at)
            mechanisms[purpose] = result.mechanism
            if result.reason is not None:
                reasons.add(result.reason)
            else:
                reasons |= consent_reasons(consent, record.category, purpose, result.mechanism, scope.partner)
                reasons |= post_reasons(consent, record, purpose)
                rule = notification_rule(policy, version, record.category, purpose, rules_at)
                if not_notified(rule, region, consent, category_key(record.category)):
                    reasons.add(Reason.NOT_NOTIFIED)
                if refused_by_signal(policy, region, purpose, consent):
                    reasons.add(Reason.SIGNAL_OPT_OUT)
    ordered = tuple(r for r in REASON_ORDER if r in reasons)
    return Decision(
        allowed=not ordered,
        reasons=ordered,
        version_id=version.version_id if version else None,
        region=region,
        mechanisms=mechanisms,
    )
