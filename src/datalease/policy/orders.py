"""Regulator orders as a rule both compilers apply: what an order halts, judged at the facts' instant.

An order in force at T withholds every record whose owner lives in one of its countries (its regions
resolved through the policy's region map, plus the countries it names), of one of its categories,
from a scope asking for one of its purposes (a purpose covers its descendants; a scope asking for a
purpose is asking for every purpose it covers). Whatever the consent settings and the policy's rules
say: reason `regulator_order`.

Orders are judged at `at` — the instant of the facts — never at `policy_at`: a withdrawal judges
today's facts under the policy the release was built with, and today's orders are among today's facts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from datalease.policy.model import ANY, Policy, RecordFacts, RegulatorOrder
from datalease.policy.vocabulary import Reason


def order_countries(policy: Policy, order: RegulatorOrder) -> frozenset[str]:
    """The countries an order covers: its own plus those of its regions (as the policy maps them)."""
    countries = set(order.countries)
    for region in order.regions:
        countries |= policy.regions.get(region, frozenset())
    return frozenset(countries)


def covers_purpose(order: RegulatorOrder, purpose: str) -> bool:
    return ANY in order.purposes or any(purpose == p or purpose.startswith(p + ".") for p in order.purposes)


def covers_category(order: RegulatorOrder, category: str) -> bool:
    return ANY in order.categories or category in order.categories


def halting_orders(
    policy: Policy, category: str, purposes: Iterable[str], at: datetime
) -> tuple[RegulatorOrder, ...]:
    """The orders in force at `at` that halt `category` for one of `purposes` somewhere."""
    wanted = tuple(purposes)
    return tuple(
        o
        for o in policy.orders
        if o.active_at(at) and covers_category(o, category) and any(covers_purpose(o, p) for p in wanted)
    )


def halted_countries(policy: Policy, category: str, purposes: Iterable[str], at: datetime) -> frozenset[str]:
    out: set[str] = set()
    for order in halting_orders(policy, category, purposes, at):
        out |= order_countries(policy, order)
    return frozenset(out)


def order_reasons(policy: Policy, record: RecordFacts, purposes: Iterable[str], at: datetime) -> set[str]:
    """decide()'s side: {regulator_order} when an order in force halts this record."""
    if record.owner.country in halted_countries(policy, record.category, purposes, at):
        return {Reason.REGULATOR_ORDER}
    return set()


def order_condition(
    policy: Policy,
    category: str,
    purposes: Iterable[str],
    at: datetime,
    quote: Callable[[str], str],
) -> str | None:
    """compile()'s side: SQL over the owner `u` true exactly when an order halts the row (None: none)."""
    countries = sorted(halted_countries(policy, category, purposes, at))
    if not countries:
        return None
    return f"u.country IN ({', '.join(quote(c) for c in countries)})"


def orders_in_force(policy: Policy, at: datetime) -> tuple[RegulatorOrder, ...]:
    return tuple(o for o in policy.orders if o.active_at(at))


def with_orders(policy: Policy, orders: Iterable[RegulatorOrder]) -> Policy:
    """The policy with these orders attached (they replace any attached before)."""
    return replace(policy, orders=tuple(orders))
