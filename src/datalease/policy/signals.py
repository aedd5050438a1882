"""Preference signals (Global Privacy Control): what the policy says a signal means, per region.

`signals: {gpc: {REGION | "*": [purposes]}}` in a policy: while the person's `signal.gpc` is true, those
purposes (and the purposes they cover) are refused in that region — reason `signal_opt_out` — unless the
person confirmed an override: an explicit `purpose.<p> = true` on the purpose or one of its ancestors.
A region without an entry of its own takes the `"*"` entry. Both compilers call `signal_purposes`.
"""

from __future__ import annotations

from collections.abc import Mapping

from datalease.policy.model import ANY, Policy
from datalease.policy.vocabulary import purpose_key, purpose_lineage, signal_key


def signal_purposes(policy: Policy, signal: str, region: str) -> tuple[str, ...]:
    meaning = policy.signals.get(signal, {})
    return meaning.get(region, meaning.get(ANY, ()))


def signal_covers(policy: Policy, signal: str, region: str, purpose: str) -> bool:
    listed = signal_purposes(policy, signal, region)
    return any(p in listed for p in purpose_lineage(purpose))


def override_keys(purpose: str) -> tuple[str, ...]:
    """The explicit choices that confirm an override of a signal for `purpose`."""
    return tuple(purpose_key(p) for p in purpose_lineage(purpose))


def refused_by_signal(policy: Policy, region: str, purpose: str, consent: Mapping[str, bool]) -> bool:
    """`decide`'s side: a signal the person sent refuses `purpose` here and they did not override it."""
    if any(consent.get(k) is True for k in override_keys(purpose)):
        return False
    return any(
        consent.get(signal_key(signal)) is True and signal_covers(policy, signal, region, purpose)
        for signal in policy.signals
    )
