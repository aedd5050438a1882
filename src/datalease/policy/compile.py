"""The bulk compiler: the same policy, scope and T as `decide`, emitted as one relational plan.

Everything that is constant for a whole release (the version in force, the winning rule per region,
the adult cutoff date) is resolved here, in Python, with the functions `decide` uses; only what varies
per row (country, birth date, account state, the record's own dates, the owner's settings) becomes SQL.
The SQL sticks to ANSI constructs (CASE, COALESCE, IN, LEFT JOIN, GROUP BY) so DuckDB and Spark SQL
both run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from datalease.policy.model import ANY, Policy, PolicyVersion, Scope
from datalease.policy.notices import notification_rule, notified_key
from datalease.policy.orders import order_condition
from datalease.policy.post_choices import POST_REFUSED_SQL, applies_to, post_refusal_join
from datalease.policy.resolve import (
    Outcome,
    adult_cutoff,
    all_regions,
    outcome,
    region_in_scope,
    scope_purposes,
)
from datalease.policy.signals import override_keys, signal_covers
from datalease.policy.vocabulary import (
    ACCOUNT_STATE_REASONS,
    MASTER_KEY,
    REASON_ORDER,
    Reason,
    category_key,
    partner_block_key,
    purpose_key,
    purpose_lineage,
    signal_key,
)


@dataclass(frozen=True)
class CategoryShape:
    """Where a category's records live and which of their columns the policy reads."""

    owner: str
    created_at: str = "created_at"
    deleted_at: str | None = "deleted_at"
    visibility: str | None = None
    from_users: bool = False  # the record IS the user row (profile)
    post_id: str | None = None  # the post's own id column: per-post choices (policy/post_choices.py)


CATEGORY_SHAPES: dict[str, CategoryShape] = {
    "posts": CategoryShape(owner="author_id", visibility="visibility", post_id="post_id"),
    "likes": CategoryShape(owner="user_id"),
    "reposts": CategoryShape(owner="user_id"),
    "bookmarks": CategoryShape(owner="user_id"),
    "profile": CategoryShape(owner="user_id", deleted_at=None, from_users=True),
}


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines' SQL; everything else a plan says is the same text."""

    name: str
    timestamp_literal: Callable[[datetime], str]
    date_literal: Callable[[date], str]
    string_type: str = "VARCHAR"
    binary_type: str = "BLOB"
    sha256_hex: Callable[[str], str] = lambda value: f"sha256({value})"  # lowercase hex of a binary
    concat_binary: Callable[[str, str], str] = lambda left, right: f"{left} || {right}"


def _iso_ts(value: datetime) -> str:
    return value.isoformat(sep=" ")


DUCKDB = Dialect("duckdb", lambda t: f"TIMESTAMPTZ '{_iso_ts(t)}'", lambda d: f"DATE '{d.isoformat()}'")
SPARK = Dialect(
    "spark",
    lambda t: f"TIMESTAMP '{_iso_ts(t)}'",
    lambda d: f"DATE '{d.isoformat()}'",
    string_type="STRING",
    binary_type="BINARY",
    sha256_hex=lambda value: f"sha2({value}, 256)",
    concat_binary=lambda left, right: f"concat({left}, {right})",
)


@dataclass(frozen=True)
class Relations:
    """Names of the relations the plan reads; the engine registers them."""

    records: str
    users: str = "users"
    consent: str = "consent"


@dataclass(frozen=True)
class CompiledPlan:
    category: str
    version_id: str | None
    at: datetime
    predicate: str  # TRUE for an eligible row; over aliases r (record), u (owner), c (consent)
    reason_conditions: dict[str, str]  # reason code -> condition; only those that can hold
    from_clause: str
    consent_keys: tuple[str, ...] = field(default=())

    def eligible_sql(self, select: Iterable[str] = ("r.*",)) -> str:
        return f"SELECT {', '.join(select)}\n{self.from_clause}\nWHERE {self.predicate}"

    def reasons_sql(self, select: Iterable[str] = (), where: str | None = None) -> str:
        """One row per record, a boolean column per reason code that can hold, and `allowed`.

        `where` optionally narrows the records considered (e.g. a sample), never the decision.
        """
        columns = [*select]
        columns += [f"({cond}) AS {code}" for code, cond in self.reason_conditions.items()]
        columns.append(f"({self.predicate}) AS allowed")
        return f"SELECT {', '.join(columns)}\n{self.from_clause}" + (f"\nWHERE {where}" if where else "")


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Conditions:
    """SQL conditions per reason code (for explanations) and the parts of the eligibility filter.

    The two differ only in form: the filter may merge or drop guards where the union of its parts is
    provably the same set, which keeps the bulk predicate as lean as a hand-written one.
    """

    def __init__(self) -> None:
        self.by_reason: dict[str, list[str]] = {}
        self.filter_parts: list[str] = []

    def add(self, reason: str, condition: str | None) -> None:
        self.add_reason(reason, condition)
        self.add_filter(condition)

    def add_reason(self, reason: str, condition: str | None) -> None:
        if condition is not None:
            _append_new(self.by_reason.setdefault(reason, []), condition)

    def add_filter(self, condition: str | None) -> None:
        if condition is not None:
            _append_new(self.filter_parts, condition)

    def ordered(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for reason in REASON_ORDER:
            parts = self.by_reason.get(reason)
            if parts:
                out[reason] = _any(parts)
        return out

    def predicate(self) -> str:
        if not self.filter_parts:
            return "TRUE"
        if "TRUE" in self.filter_parts:
            return "FALSE"
        return f"NOT ({_any(self.filter_parts)})"


def _append_new(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _any(parts: list[str]) -> str:
    return "TRUE" if "TRUE" in parts else " OR ".join(f"({p})" for p in parts)


class _Compiler:
    def __init__(
        self,
        policy: Policy,
        scope: Scope,
        category: str,
        at: datetime,
        dialect: Dialect,
        policy_at: datetime | None = None,
    ) -> None:
        if category not in CATEGORY_SHAPES:
            raise ValueError(f"category {category!r}: expected one of {', '.join(CATEGORY_SHAPES)}")
        self.policy = policy
        self.scope = scope
        self.category = category
        self.at = at
        self.policy_at = at if policy_at is None else policy_at  # see decide(): rules vs facts
        self.dialect = dialect
        self.shape = CATEGORY_SHAPES[category]
        self.r = "u" if self.shape.from_users else "r"
        self.consent_columns: dict[str, str] = {}  # aggregate over the snapshot -> column name
        self.consent_keys: list[str] = []
        self.conditions = _Conditions()
        self.post_choices = False  # the plan joins the owner's per-post setting

    # --- country sets -------------------------------------------------------------------------
    def region_condition(self, regions: Iterable[str]) -> str | None:
        """SQL true exactly for owners whose country falls in one of `regions` (ANY = unlisted)."""
        wanted = set(regions)
        if not wanted:
            return None
        if wanted >= set(all_regions(self.policy)):
            return "TRUE"
        if ANY in wanted:
            unwanted = sorted(
                {
                    c
                    for name, countries in self.policy.regions.items()
                    if name not in wanted
                    for c in countries
                }
            )
            return f"u.country NOT IN ({', '.join(quote(c) for c in unwanted)})"
        listed = sorted({c for name in wanted for c in self.policy.regions[name]})
        return f"u.country IN ({', '.join(quote(c) for c in listed)})" if listed else None

    # --- consent settings ---------------------------------------------------------------------
    def any_setting(self, keys: tuple[str, ...], value: bool) -> str:
        """SQL true when the owner explicitly set one of `keys` to `value` (as of T)."""
        test = "value" if value else "NOT value"
        key_test = (
            f"key = {quote(keys[0])}" if len(keys) == 1 else f"key IN ({', '.join(quote(k) for k in keys)})"
        )
        aggregate = f"MAX(CASE WHEN {key_test} AND {test} THEN 1 ELSE 0 END)"
        column = self.consent_columns.setdefault(aggregate, f"s{len(self.consent_columns)}")
        for key in keys:
            _append_new(self.consent_keys, key)
        return f"COALESCE(c.{column}, 0) = 1"

    # --- the rules ----------------------------------------------------------------------------
    def hard_exclusions(self) -> None:
        rules = self.policy.hard_exclusions
        add = self.conditions.add
        excluded_states = [*rules.account_states, *(["protected"] if rules.protected_accounts else [])]
        for state in rules.account_states:
            self.conditions.add_reason(ACCOUNT_STATE_REASONS[state], f"u.account_state = {quote(state)}")
        if rules.protected_accounts:
            self.conditions.add_reason(Reason.PROTECTED_ACCOUNT, "u.account_state = 'protected'")
        if excluded_states:
            self.conditions.add_filter(f"u.account_state IN ({', '.join(quote(s) for s in excluded_states)})")
        cutoff = self.dialect.date_literal(adult_cutoff(self.at, rules.minimum_age))
        add(Reason.MINOR, f"u.birth_date IS NOT NULL AND u.birth_date > {cutoff}")
        if rules.exclude_unknown_age:
            add(Reason.AGE_UNKNOWN, "u.birth_date IS NULL")
        at = self.dialect.timestamp_literal(self.at)
        if rules.deleted_content and self.shape.deleted_at:
            column = f"{self.r}.{self.shape.deleted_at}"
            add(Reason.CONTENT_DELETED, f"{column} IS NOT NULL AND {column} <= {at}")
        if rules.non_public_content and self.shape.visibility:
            add(Reason.NOT_PUBLIC, f"{self.r}.{self.shape.visibility} <> 'public'")
        add(Reason.NOT_YET_CREATED, f"{self.r}.{self.shape.created_at} > {at}")

    def scope_limits(self) -> None:
        scope = self.scope
        outside = [
            r
            for r in all_regions(self.policy)
            if not region_in_scope(r, scope.regions_allowed, scope.regions_denied)
        ]
        self.conditions.add(Reason.OUTSIDE_AGREEMENT_REGIONS, self.region_condition(outside))
        created = f"{self.r}.{self.shape.created_at}"
        window: list[str] = []
        if scope.content_from is not None:
            window.append(f"{created} < {self.dialect.timestamp_literal(scope.content_from)}")
        if scope.content_until is not None:
            window.append(f"{created} >= {self.dialect.timestamp_literal(scope.content_until)}")
        if window:
            self.conditions.add(Reason.OUTSIDE_CONTENT_WINDOW, " OR ".join(window))

    def purpose_rules(self, version: PolicyVersion, purpose: str) -> None:
        by_outcome: dict[tuple[str, str | None], list[str]] = {}
        for region in all_regions(self.policy):
            result: Outcome = outcome(self.policy, version, region, self.category, purpose, self.policy_at)
            by_outcome.setdefault((result.mechanism, result.reason), []).append(region)
        for (_mechanism, reason), regions in by_outcome.items():
            if reason is not None:
                self.conditions.add(reason, self.region_condition(regions))
        consented = [r for (m, _), regions in by_outcome.items() if m != "excluded" for r in regions]
        opt_in = by_outcome.get(("opt_in", None), [])
        self.consent_rules(purpose, self.region_condition(consented), self.region_condition(opt_in))
        self.notice_and_signal_rules(version, purpose, consented)

    def notice_and_signal_rules(self, version: PolicyVersion, purpose: str, consented: list[str]) -> None:
        """Mirror of `policy/notices.not_notified` and `policy/signals.refused_by_signal` (issue 15)."""
        rule = notification_rule(self.policy, version, self.category, purpose, self.policy_at)
        where = self.region_condition(rule.regions) if rule else None
        if rule is not None and where is not None:
            kept = self.region_condition(rule.previously_opt_in)
            opted_in = self.any_setting((category_key(self.category),), True)
            condition = f"({where}) AND NOT ({self.any_setting((notified_key(rule.version_id),), True)})"
            if kept is not None:
                condition += f" AND NOT (({kept}) AND {opted_in})"
            self.conditions.add(Reason.NOT_NOTIFIED, condition)
        for signal in self.policy.signals:
            covered = [r for r in consented if signal_covers(self.policy, signal, r, purpose)]
            region = self.region_condition(covered)
            if region is not None:
                sent = self.any_setting((signal_key(signal),), True)
                overridden = self.any_setting(override_keys(purpose), True)
                self.conditions.add(Reason.SIGNAL_OPT_OUT, f"({region}) AND {sent} AND NOT ({overridden})")

    def consent_rules(self, purpose: str, where_consent: str | None, where_opt_in: str | None) -> None:
        """Mirror of `decide.consent_reasons`, limited to owners whose region asks for consent.

        In the filter the region guard is dropped: every region outside `where_consent` is already
        excluded by a rule condition of this purpose, so `excluded OR (consent AND x)` = `excluded OR x`.
        """
        if where_consent is None:
            return

        def within(region: str | None, condition: str) -> str | None:
            if region is None:
                return None
            return condition if region == "TRUE" else f"({region}) AND ({condition})"

        def add_guarded(reason: str, condition: str) -> None:
            self.conditions.add_reason(reason, within(where_consent, condition))
            self.conditions.add_filter(condition)

        category = category_key(self.category)
        add_guarded(Reason.OPTED_OUT, self.any_setting((MASTER_KEY, category), False))
        self.conditions.add(
            Reason.OPT_IN_REQUIRED, within(where_opt_in, f"NOT ({self.any_setting((category,), True)})")
        )
        refused = tuple(purpose_key(p) for p in purpose_lineage(purpose))
        add_guarded(Reason.PURPOSE_NOT_CONSENTED, self.any_setting(refused, False))
        if self.scope.partner is not None:
            add_guarded(
                Reason.PARTNER_BLOCKED, self.any_setting((partner_block_key(self.scope.partner),), True)
            )
        if self.shape.post_id is not None and applies_to(purpose):
            self.post_choices = True
            add_guarded(Reason.POST_OPTED_OUT, POST_REFUSED_SQL)

    def from_clause(self, relations: Relations) -> str:
        if self.shape.from_users:
            source = f"FROM {relations.users} AS u"
        else:
            source = f"FROM {relations.records} AS r\nJOIN {relations.users} AS u ON u.user_id = r.{self.shape.owner}"
        if self.post_choices and self.shape.post_id is not None:
            source += "\n" + post_refusal_join(relations.consent, "u.user_id", f"r.{self.shape.post_id}")
        if not self.consent_columns:
            return source
        pivots = ",\n    ".join(
            f"{aggregate} AS {column}" for aggregate, column in self.consent_columns.items()
        )
        keys = ", ".join(quote(k) for k in self.consent_keys)
        return (
            f"{source}\nLEFT JOIN (\n  SELECT user_id,\n    {pivots}\n  FROM {relations.consent}\n"
            f"  WHERE key IN ({keys})\n  GROUP BY user_id\n) AS c ON c.user_id = u.user_id"
        )

    def compile(self, relations: Relations) -> CompiledPlan:
        purposes = scope_purposes(self.scope)
        self.hard_exclusions()
        self.scope_limits()
        # Regulator orders (policy/orders.py), judged at the facts' instant like decide().
        self.conditions.add(
            Reason.REGULATOR_ORDER, order_condition(self.policy, self.category, purposes, self.at, quote)
        )
        version = self.policy.version_at(self.policy_at)
        if version is None:
            self.conditions.add(Reason.BEFORE_POLICY_EFFECTIVE, "TRUE")
        else:
            for purpose in purposes:
                self.purpose_rules(version, purpose)
        reasons = self.conditions.ordered()
        predicate = self.conditions.predicate()
        return CompiledPlan(
            category=self.category,
            version_id=version.version_id if version else None,
            at=self.at,
            predicate=predicate,
            reason_conditions=reasons,
            from_clause=self.from_clause(relations),
            consent_keys=tuple(self.consent_keys),
        )


def compile_plan(
    policy: Policy,
    scope: Scope,
    category: str,
    at: datetime,
    *,
    relations: Relations | None = None,
    dialect: Dialect = DUCKDB,
    policy_at: datetime | None = None,
) -> CompiledPlan:
    """Compile the eligibility of `category` records for `scope` at `at` into one SQL plan.

    The plan reads three relations: the category's records (aliased r), `users` (u) and the consent
    snapshot `consent(user_id, key, value)` holding each user's explicit settings as of `at`.
    `policy_at` (default `at`) is the instant whose policy version and rule windows apply (as in
    `decide`).
    """
    rel = relations or Relations(records=category)
    return _Compiler(policy, scope, category, at, dialect, policy_at).compile(rel)
