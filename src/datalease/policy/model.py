"""The policy as plain, immutable data. Built by `load`, read by `decide` and `compile`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

ANY = "*"


@dataclass(frozen=True)
class Rule:
    """A consent mechanism for (regions × categories × purposes), optionally only within [starts, ends)."""

    regions: tuple[str, ...]  # region names, or (ANY,)
    categories: tuple[str, ...]  # category names, or (ANY,)
    purposes: tuple[str, ...]  # purpose names (covering their descendants), or (ANY,)
    mechanism: str
    starts: datetime | None = None
    ends: datetime | None = None
    # Where the rule was written (for messages and `policy show`); not part of its meaning.
    line: int = field(default=0, compare=False)
    col: int = field(default=0, compare=False)
    index: int = field(default=0, compare=False)

    def active_at(self, at: datetime) -> bool:
        return (self.starts is None or self.starts <= at) and (self.ends is None or at < self.ends)

    def covers_region(self, region: str) -> bool:
        return ANY in self.regions or region in self.regions

    def covers_category(self, category: str) -> bool:
        return ANY in self.categories or category in self.categories

    def purpose_depth(self, purpose: str) -> int | None:
        """How specifically this rule names `purpose`: None if not covered, 0 for ANY, else path depth."""
        if ANY in self.purposes:
            return 0
        depths = [p.count(".") + 1 for p in self.purposes if purpose == p or purpose.startswith(p + ".")]
        return max(depths) if depths else None


@dataclass(frozen=True)
class NoticeText:
    """One locale's notice: what the person was shown. `sha256` identifies exactly this text."""

    locale: str
    title: str
    text: str
    sha256: str


@dataclass(frozen=True)
class Notice:
    """The notice announcing a policy version (see `policy/notices.py`)."""

    published: datetime
    texts: tuple[NoticeText, ...]
    sha256: str  # of the whole notice, every locale
    opt_out_available_from: datetime | None = None
    require_notification: bool = False


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    effective_from: datetime
    rules: tuple[Rule, ...]
    note: str = ""
    notice: Notice | None = None


@dataclass(frozen=True)
class HardExclusions:
    """Exclusions no setting can override."""

    minimum_age: int = 18
    exclude_unknown_age: bool = True
    protected_accounts: bool = True
    account_states: tuple[str, ...] = ("suspended", "deactivated", "deleted")
    deleted_content: bool = True
    non_public_content: bool = True


@dataclass(frozen=True)
class RegulatorOrder:
    """A regulator's order halting (countries × categories × purposes) within [effective, until)."""

    order_id: str
    issued_by: str
    reference: str
    regions: tuple[str, ...]  # region names of the policy
    countries: tuple[str, ...]  # ISO-3166 alpha-2
    categories: tuple[str, ...]  # category names, or (ANY,)
    purposes: tuple[str, ...]  # purpose names (covering their descendants), or (ANY,)
    effective: datetime
    until: datetime | None = None
    lifted_at: datetime | None = None
    note: str = ""

    def active_at(self, at: datetime) -> bool:
        ends = min((e for e in (self.until, self.lifted_at) if e is not None), default=None)
        return self.effective <= at and (ends is None or at < ends)


@dataclass(frozen=True)
class Policy:
    name: str
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    regions: Mapping[str, frozenset[str]]  # region name -> ISO-3166 alpha-2 countries
    hard_exclusions: HardExclusions
    versions: tuple[PolicyVersion, ...]  # sorted by effective_from
    description: str = ""
    # Regulator orders in force or scheduled (attached from the store; see policy/orders.py).
    orders: tuple[RegulatorOrder, ...] = ()
    # Notices and signals (issue 15): days of notice per region name or ANY; signal -> region -> purposes.
    notice_periods: Mapping[str, int] = field(default_factory=dict)
    signals: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def region_of(self, country: str) -> str:
        for name, countries in self.regions.items():
            if country in countries:
                return name
        return ANY

    def version_at(self, at: datetime) -> PolicyVersion | None:
        current = None
        for version in self.versions:
            if version.effective_from <= at:
                current = version
        return current

    def next_version_after(self, at: datetime) -> PolicyVersion | None:
        return next((v for v in self.versions if v.effective_from > at), None)


@dataclass(frozen=True)
class Scope:
    """What a recipient asks for. Until agreements exist: purposes + categories + optional partner."""

    purposes: tuple[str, ...]
    categories: tuple[str, ...]
    partner: str | None = None
    regions_allowed: tuple[str, ...] | None = None  # region names; None = every region
    regions_denied: tuple[str, ...] = ()
    content_from: datetime | None = None
    content_until: datetime | None = None


@dataclass(frozen=True)
class UserFacts:
    user_id: int
    country: str
    birth_date: date | None
    account_state: str


@dataclass(frozen=True)
class RecordFacts:
    """One record of a category, owned by `owner` (a post's author, a like's liker, a profile's user)."""

    category: str
    owner: UserFacts
    created_at: datetime
    deleted_at: datetime | None = None
    visibility: str = "public"
    post_id: int | None = None  # a post's own id (per-post choices); None for other categories


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...]
    version_id: str | None
    region: str
    mechanisms: Mapping[str, str] = field(default_factory=dict)  # purpose -> mechanism in force
