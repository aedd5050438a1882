"""What every table of every agreement must hold, computed from the documentation alone.

Sources: docs/policy.md, docs/releases.md, docs/agreements.md, docs/revocation.md, docs/sharing.md.
This module imports nothing from datalease: it parses the policy and agreement YAML itself, decides
every record with the rules as the docs state them, keys rows with Python's `hmac` from the
documented formula and replays builds and revocation batches on its own copy of the platform.

Readings where the docs leave room (each is a finding; the report lists them):

1. Consent at T: for each key, the latest event with `at <= T`; two events of one key with the same
   `at` are ordered by arrival (the later recorded wins). The docs say only "every explicit setting
   with at <= T".
2. Platform events act in event time, not arrival order (docs/revocation.md: "their own event
   times"): a user's account state is the state named by their account event with the latest event
   time, their country that of their latest `user_country_change`; a post's (or like's …) deletion
   time is the earliest `post_delete` (`like_delete` …) time or its ingested `deleted_at`, whichever
   is earlier. An event reaches the lake with the first batch (a build runs one first) at or after
   its own time: a future-dated event waits for its time, and so does its revocation
   (docs/revocation.md, "Events apply in event time").
   Account and country events override the ingested value of those columns; the generated worlds
   never re-ingest a row that events changed, which the docs do not cover.
3. A revocation batch decides the rows it reconsiders with the rules the release was built under
   (the version in force at the release's T and the rules active then: a narrower policy reaches
   partners with the next build, docs/revocation.md) but with what is known at the batch's instant:
   the consent in effect then, the accounts and deletions as they then are. It reconsiders exactly
   what an incremental build reconsiders for its subjects (docs/releases.md): for a person, their
   profile, their posts, their likes/reposts/bookmarks and every engagement row pointing at their
   posts; for a post, the post and the rows pointing at it; for one engagement row, that row. It
   only deletes.
4. Forget entries: one per agreement, batch and subject (scope + key) that some deleted row counts
   for; each deleted row counts for one subject only (docs/revocation.md, "One subject, one forget
   entry"): the person it belongs to (rows carrying their `user_key`, and rows pointing at their
   posts), else the post it is about, else the engagement row itself. Several intents of one subject
   in a batch make one entry. Its reason code is that of one of those intents; the docs
   name the codes of platform events only, so any non-empty code is accepted for consent changes.
   `requested_at` is when the intent was recorded (the system's clock) and `deadline` is
   `requested_at + deletion_sla_hours`.
5. Curation: a post is curated once `curate` runs after it was ingested, whatever its `deleted_at`
   (a post deleted after T was live at T and is released as of T). The generated texts carry no PII,
   so the scrubbed text is the text and `pii_types` is empty; the docs name no placeholder types.
   `sentiment` is VADER's compound score of the text, `sentiment_label` its label with VADER's
   thresholds (>= 0.05 positive, <= -0.05 negative; docs/partnerkit.md).
6. A profile record's creation time (for the content window and `not_yet_created`) is the account's
   `created_at`; likes, reposts and bookmarks are public records.
7. `not_in_policy`, `before_policy_effective`: a purpose or a category the policy does not list is
   not evaluated against rules (nothing else is added for it); before the first version no rule is.
8. `hard_exclusions.account_states: []` excludes no state (the list names the excluded states).
9. A build that raises is a build that died: the batch it ran first stands, the previous release
   stays visible (docs/releases.md "All or nothing"). A build killed after its ledger row committed
   (`after_ledger`) made its release.
10. A change feed may name (insert or delete) only rows some release held: a dead build's commits are
   "invisible" and "nothing is served that has no ledger row" (docs/releases.md), so a delete of a row
   no release held reveals a dead commit.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from inputs import (
    ENGAGEMENT,
    AddPartner,
    ApplyPolicy,
    Build,
    ConsentChange,
    CreateAgreement,
    Curate,
    EngagementRow,
    Ingest,
    KilledBuild,
    PlatformEvent,
    PostRow,
    RecordConsent,
    RevocationBatch,
    Step,
    SubmitEvents,
    UserRow,
)
from ruamel.yaml import YAML
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

ANY = "*"
ALL_CATEGORIES = ("posts", "likes", "reposts", "bookmarks", "profile")
ALL_PURPOSES = (
    "train_ai_system",
    "train_ai_system.generative",
    "train_ai_system.non_generative",
    "third_party_sharing",
    "third_party_sharing.independent",
)
ACCOUNT_STATES = ("suspended", "deactivated", "deleted")
REASONS = (
    "before_policy_effective",
    "account_deleted",
    "account_deactivated",
    "account_suspended",
    "protected_account",
    "minor",
    "age_unknown",
    "content_deleted",
    "not_public",
    "not_yet_created",
    "outside_agreement_regions",
    "outside_content_window",
    "not_in_policy",
    "no_rule",
    "region_excluded",
    "excluded_by_policy",
    "opted_out",
    "opt_in_required",
    "purpose_not_consented",
    "partner_blocked",
)
IDENTITY = {
    "posts": ("post_key",),
    "likes": ("user_key", "post_key"),
    "reposts": ("user_key", "post_key"),
    "bookmarks": ("user_key", "post_key"),
    "profile": ("user_key",),
    "forget": ("forget_id",),
    "ledger_head": ("release_id",),
}
FORGET_COLUMNS = ("forget_id", "subject_key", "scope", "reason_code", "requested_at", "deadline")
# docs/consent.md "Anchoring": one row per build, the consent head it was built from.
LEDGER_HEAD_COLUMNS = (
    "release_id",
    "kind",
    "as_of",
    "committed_at",
    "consent_seq",
    "consent_hash",
    "policy_version",
    "table_versions",
)
# docs/revocation.md: type → (what it is about, the reason code partners see; None: not a revocation)
ACCOUNT_EVENTS = {
    "user_delete": ("deleted", "account_deleted"),
    "user_deactivate": ("deactivated", "account_deactivated"),
    "user_suspend": ("suspended", "account_suspended"),
    "user_protect": ("protected", "account_protected"),
    "user_reactivate": ("active", None),
    "user_unsuspend": ("active", None),
    "user_unprotect": ("active", None),
}
CONTENT_EVENTS = {
    "post_delete": ("posts", "post_deleted"),
    "like_delete": ("likes", "like_removed"),
    "repost_delete": ("reposts", "repost_removed"),
    "bookmark_delete": ("bookmarks", "bookmark_removed"),
}
COUNTRY_EVENT = "user_country_change"
FORGET_SCOPES = {"likes": "like", "reposts": "repost", "bookmarks": "bookmark"}
POSITIVE_FROM, NEGATIVE_TO = 0.05, -0.05


class OracleError(ValueError):
    """The world asks for something the docs do not allow (a generator bug, not a system bug)."""


# --- time ----------------------------------------------------------------------------------------


def instant(value: Any) -> datetime:
    """docs/policy.md "Dates": a bare date is midnight UTC, a date-time without offset is UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return instant(datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise OracleError(f"expected a date or date-time, got {value!r}")


def term_end(value: Any) -> datetime:
    """docs/agreements.md: a date `end` is the last day of the term; a date-time is the first instant after."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return instant(value) + timedelta(days=1)
    return instant(value)


def comes_of_age(birth: date, age: int) -> date:
    """The day someone born on `birth` is `age`; a 29 February child on 1 March in common years."""
    try:
        return birth.replace(year=birth.year + age)
    except ValueError:
        return date(birth.year + age, 3, 1)


# --- the policy ----------------------------------------------------------------------------------


def _names(value: Any) -> tuple[str, ...]:
    if value is None or value == ANY:
        return (ANY,)
    if isinstance(value, str):
        return (value,)
    names = tuple(str(v) for v in value)
    return (ANY,) if ANY in names else names


@dataclass(frozen=True)
class Rule:
    regions: tuple[str, ...]
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    mechanism: str
    start: datetime | None = None
    end: datetime | None = None

    def active(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)

    def specificity(self, region: str, category: str, purpose: str) -> tuple[int, int, int] | None:
        """(names the region, purpose depth, names the category) when the rule covers the triple."""
        if ANY not in self.regions and region not in self.regions:
            return None
        if ANY not in self.categories and category not in self.categories:
            return None
        if ANY in self.purposes:
            depth = 0
        else:
            depths = [p.count(".") + 1 for p in self.purposes if purpose == p or purpose.startswith(p + ".")]
            if not depths:
                return None
            depth = max(depths)
        return (int(ANY not in self.regions), depth, int(ANY not in self.categories))

    def overlaps(self, other: Rule) -> bool:
        starts_before_other_ends = self.start is None or other.end is None or self.start < other.end
        other_starts_before_end = other.start is None or self.end is None or other.start < self.end
        return starts_before_other_ends and other_starts_before_end


@dataclass(frozen=True)
class Version:
    version_id: str
    effective_from: datetime
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class HardExclusions:
    minimum_age: int = 18
    unknown_age: str = "exclude"
    protected_accounts: bool = True
    account_states: tuple[str, ...] = ACCOUNT_STATES
    deleted_content: bool = True
    non_public_content: bool = True


@dataclass(frozen=True)
class Policy:
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    regions: Mapping[str, frozenset[str]]
    hard: HardExclusions
    versions: tuple[Version, ...]

    def region_of(self, country: str) -> str:
        for name, countries in self.regions.items():
            if country in countries:
                return name
        return ANY

    def version_at(self, at: datetime) -> Version | None:
        current = None
        for version in self.versions:
            if version.effective_from <= at:
                current = version
        return current

    def edges(self) -> list[datetime]:
        """Every instant at which a version starts or a rule's window opens or closes."""
        out = [v.effective_from for v in self.versions]
        out += [e for v in self.versions for r in v.rules for e in (r.start, r.end) if e is not None]
        return sorted(set(out))


def _yaml(text: str) -> dict[str, Any]:
    loaded = YAML(typ="safe").load(text)  # YAML 1.2: NO is Norway
    if not isinstance(loaded, dict):
        raise OracleError("expected a mapping at the top of the document")
    return loaded


def parse_policy(text: str) -> Policy:
    doc = _yaml(text)
    hard = doc.get("hard_exclusions") or {}
    versions = []
    for raw in doc["versions"]:
        rules = []
        for r in raw.get("rules") or []:
            rules.append(
                Rule(
                    regions=_names(r.get("regions", r.get("region", ANY))),
                    categories=_names(r.get("categories", ANY)),
                    purposes=_names(r.get("purposes", ANY)),
                    mechanism=str(r["mechanism"]),
                    start=instant(r["from"]) if r.get("from") is not None else None,
                    end=instant(r["until"]) if r.get("until") is not None else None,
                )
            )
        versions.append(Version(str(raw["id"]), instant(raw["effective_from"]), tuple(rules)))
    return Policy(
        categories=tuple(doc.get("categories") or ALL_CATEGORIES),
        purposes=tuple(doc.get("purposes") or ALL_PURPOSES),
        regions={str(k): frozenset(str(c) for c in v) for k, v in (doc.get("regions") or {}).items()},
        hard=HardExclusions(
            minimum_age=int(hard.get("minimum_age", 18)),
            unknown_age=str(hard.get("unknown_age", "exclude")),
            protected_accounts=bool(hard.get("protected_accounts", True)),
            account_states=tuple(hard.get("account_states", ACCOUNT_STATES)),
            deleted_content=bool(hard.get("deleted_content", True)),
            non_public_content=bool(hard.get("non_public_content", True)),
        ),
        versions=tuple(versions),
    )


def ambiguities(policy: Policy) -> list[str]:
    """Pairs of rules of one version equally specific for some (region, category, purpose) while their
    windows overlap: docs/policy.md says loading rejects such a policy."""
    found = []
    regions = [*policy.regions, ANY]
    for version in policy.versions:
        for i, first in enumerate(version.rules):
            for second in version.rules[i + 1 :]:
                if not first.overlaps(second):
                    continue
                clash = next(
                    (
                        (region, category, purpose)
                        for region in regions
                        for category in policy.categories
                        for purpose in ALL_PURPOSES
                        if (s := first.specificity(region, category, purpose)) is not None
                        and s == second.specificity(region, category, purpose)
                    ),
                    None,
                )
                if clash:
                    found.append(f"version {version.version_id}: {first} and {second} tie on {clash}")
    return found


# --- agreements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    agreement_id: str
    partner: str
    status: str
    term_start: datetime
    term_end: datetime
    purposes: tuple[str, ...]
    categories: tuple[str, ...]
    regions_allowed: tuple[str, ...] | None
    regions_denied: tuple[str, ...]
    content_from: datetime | None
    content_until: datetime | None
    fields: Mapping[str, tuple[str, ...]]
    deletion_sla_hours: int

    def in_term(self, at: datetime) -> bool:
        return self.term_start <= at < self.term_end

    def columns(self, category: str) -> tuple[str, ...]:
        """What the partner's table has (docs/agreements.md "Fields"): the keys, then the fields."""
        if category == "posts":
            keys: tuple[str, ...] = ("post_key", "user_key")
        elif category == "profile":
            keys = ("user_key",)
        else:
            keys = ("user_key", "post_key")
        return (*keys, *self.fields[category])


def parse_agreement(text: str) -> Agreement:
    doc = _yaml(text)
    regions = doc.get("regions") or {}
    window = doc.get("content_window") or {}
    allowed = regions.get("allowed")
    return Agreement(
        agreement_id=str(doc["agreement"]),
        partner=str(doc["partner"]),
        status=str(doc.get("status", "draft")),
        term_start=instant(doc["term"]["start"]),
        term_end=term_end(doc["term"]["end"]),
        purposes=tuple(doc["purposes"]),
        categories=tuple(doc["categories"]),
        regions_allowed=tuple(str(r) for r in allowed) if allowed is not None else None,
        regions_denied=tuple(str(r) for r in regions.get("denied") or ()),
        content_from=instant(window["from"]) if window.get("from") is not None else None,
        content_until=instant(window["until"]) if window.get("until") is not None else None,
        fields={str(c): tuple(f) for c, f in doc["fields"].items()},
        deletion_sla_hours=int(doc["deletion_sla_hours"]),
    )


# --- decisions -----------------------------------------------------------------------------------


def covered_purposes(purposes: Iterable[str]) -> tuple[str, ...]:
    """A requested purpose is decided for itself and each descendant (docs/policy.md)."""
    return tuple(p for p in ALL_PURPOSES if any(p == q or p.startswith(q + ".") for q in purposes))


def ancestors_or_self(purpose: str) -> list[str]:
    parts = purpose.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class Record:
    category: str
    owner: UserRow
    created_at: datetime
    deleted_at: datetime | None = None
    visibility: str = "public"


def decide(
    policy: Policy,
    record: Record,
    consent: Mapping[str, bool],
    agreement: Agreement,
    at: datetime,
    *,
    rules_at: datetime | None = None,
) -> tuple[str, ...]:
    """The reasons `record` may not go to `agreement` at `at`, in the canonical order (empty: it may).

    `rules_at` (default `at`) is the instant whose policy version and active rules apply: a
    revocation decides with the rules of the release it withdraws from (reading 3)."""
    rules_instant = at if rules_at is None else rules_at
    hard, owner, reasons = policy.hard, record.owner, set()
    version = policy.version_at(rules_instant)
    if version is None:
        reasons.add("before_policy_effective")
    if owner.account_state in hard.account_states:
        reasons.add(f"account_{owner.account_state}")
    if owner.account_state == "protected" and hard.protected_accounts:
        reasons.add("protected_account")
    if owner.birth_date is None:
        if hard.unknown_age == "exclude":
            reasons.add("age_unknown")
    elif at.date() < comes_of_age(owner.birth_date, hard.minimum_age):
        reasons.add("minor")
    if hard.deleted_content and record.deleted_at is not None and record.deleted_at <= at:
        reasons.add("content_deleted")
    if hard.non_public_content and record.visibility != "public":
        reasons.add("not_public")
    if record.created_at > at:
        reasons.add("not_yet_created")
    region = policy.region_of(owner.country)
    if (agreement.regions_allowed is not None and region not in agreement.regions_allowed) or (
        region in agreement.regions_denied
    ):
        reasons.add("outside_agreement_regions")
    if (agreement.content_from is not None and record.created_at < agreement.content_from) or (
        agreement.content_until is not None and record.created_at >= agreement.content_until
    ):
        reasons.add("outside_content_window")
    for purpose in covered_purposes(agreement.purposes):
        listed = record.category in policy.categories and any(
            a in policy.purposes for a in ancestors_or_self(purpose)
        )
        if not listed:
            reasons.add("not_in_policy")
            continue
        if version is None:
            continue
        reasons.update(
            _rule_reasons(version, region, record.category, purpose, consent, agreement, rules_instant)
        )
    return tuple(code for code in REASONS if code in reasons)


def _rule_reasons(
    version: Version,
    region: str,
    category: str,
    purpose: str,
    consent: Mapping[str, bool],
    agreement: Agreement,
    at: datetime,
) -> set[str]:
    candidates = [
        (s, rule)
        for rule in version.rules
        if rule.active(at) and (s := rule.specificity(region, category, purpose)) is not None
    ]
    if not candidates:
        return {"no_rule"}
    best = max(s for s, _ in candidates)
    winners = [rule for s, rule in candidates if s == best]
    if len(winners) > 1:
        raise OracleError(f"ambiguous rules for {region}, {category}, {purpose}: {winners}")
    rule = winners[0]
    if rule.mechanism == "excluded":
        return {"excluded_by_policy" if ANY in rule.regions else "region_excluded"}
    out = set()
    if consent.get("share_with_partners") is False or consent.get(f"share.{category}") is False:
        out.add("opted_out")
    if rule.mechanism == "opt_in" and consent.get(f"share.{category}") is not True:
        out.add("opt_in_required")
    if any(consent.get(f"purpose.{a}") is False for a in ancestors_or_self(purpose)):
        out.add("purpose_not_consented")
    if consent.get(f"block_partner.{agreement.partner}") is True:
        out.add("partner_blocked")
    return out


# --- keys and curation ---------------------------------------------------------------------------


def agreement_secret(master_key: bytes, agreement_id: str) -> bytes:
    return hmac.new(master_key, f"agreement:{agreement_id}".encode(), hashlib.sha256).digest()


def pseudonym(secret: bytes, kind: str, platform_id: int) -> str:
    """docs/releases.md: HMAC-SHA256(secret, "<kind>:<id>"), the first 128 bits as 32 hex characters."""
    return hmac.new(secret, f"{kind}:{platform_id}".encode(), hashlib.sha256).hexdigest()[:32]


_VADER = SentimentIntensityAnalyzer()


@dataclass(frozen=True)
class Curated:
    text: str
    pii_types: tuple[str, ...]
    sentiment: float
    sentiment_label: str


def curated(text: str) -> Curated:
    """Reading 5: generated texts carry no PII; sentiment is VADER's on the text."""
    score = float(_VADER.polarity_scores(text)["compound"])
    label = "positive" if score >= POSITIVE_FROM else "negative" if score <= NEGATIVE_TO else "neutral"
    return Curated(text, (), score, label)


# --- the platform as the lake must hold it -------------------------------------------------------


@dataclass
class Platform:
    """Rows as ingested, consent events and platform events in arrival order, and what is curated."""

    users: dict[int, UserRow] = field(default_factory=dict)
    posts: dict[int, PostRow] = field(default_factory=dict)
    engagement: dict[str, dict[tuple[int, int], EngagementRow]] = field(
        default_factory=lambda: {c: {} for c in ENGAGEMENT}
    )
    consent: list[ConsentChange] = field(default_factory=list)
    events: list[PlatformEvent] = field(default_factory=list)
    curated: dict[int, str] = field(default_factory=dict)  # post_id -> the text curation saw
    applied_until: datetime | None = None  # the latest instant a batch (or a build's) ran at

    def in_effect(self) -> list[PlatformEvent]:
        """The events the lake holds: those whose time had come when a batch last ran (reading 2)."""
        until = self.applied_until
        return [e for e in self.events if until is not None and e.at <= until]

    def ingest(self, step: Ingest) -> None:
        for row in step.rows:
            if isinstance(row, UserRow):
                self.users[row.user_id] = row
            elif isinstance(row, PostRow):
                self.posts[row.post_id] = row
            else:
                self.engagement[step.table][(row.user_id, row.post_id)] = row

    def curate(self) -> None:
        for post in self.posts.values():
            self.curated[post.post_id] = post.text

    def user(self, user_id: int) -> UserRow:
        """The account as the lake holds it once the events are applied (reading 2)."""
        row = self.users[user_id]
        mine = sorted(
            ((e.at, n, e) for n, e in enumerate(self.in_effect()) if e.user_id == user_id),
            key=lambda t: t[:2],
        )
        for _at, _n, event in mine:
            if event.type in ACCOUNT_EVENTS:
                row = replace(row, account_state=ACCOUNT_EVENTS[event.type][0])
            elif event.type == COUNTRY_EVENT and event.country is not None:
                row = replace(row, country=event.country)
        return row

    def deletion(self, table: str, ids: tuple[int, ...], ingested: datetime | None) -> datetime | None:
        kinds = {t: kind for kind, (t, _reason) in CONTENT_EVENTS.items()}
        times = [
            e.at
            for e in self.in_effect()
            if e.type == kinds[table]
            and (e.post_id,) == ids[-1:]
            and (table == "posts" or e.user_id == ids[0])
        ]
        known = [t for t in (ingested, *times) if t is not None]
        return min(known) if known else None

    def post(self, post_id: int) -> PostRow:
        row = self.posts[post_id]
        return replace(row, deleted_at=self.deletion("posts", (post_id,), row.deleted_at))

    def engaged(self, table: str, pair: tuple[int, int]) -> EngagementRow:
        row = self.engagement[table][pair]
        return replace(row, deleted_at=self.deletion(table, pair, row.deleted_at))

    def consent_at(self, user_id: int, at: datetime) -> dict[str, bool]:
        """Reading 1: per key, the latest event taking effect at or before `at`; ties by arrival."""
        state: dict[str, tuple[datetime, int, bool]] = {}
        for n, change in enumerate(self.consent):
            if change.user_id != user_id or change.at > at:
                continue
            seen = state.get(change.key)
            if seen is None or (change.at, n) >= seen[:2]:
                state[change.key] = (change.at, n, change.value)
        return {k: v for k, (_at, _n, v) in state.items()}


# --- revocation intents --------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    scope: str  # user | post | like | repost | bookmark
    user_id: int
    post_id: int | None = None
    table: str | None = None  # the engagement table of a like/repost/bookmark subject


@dataclass
class Intent:
    subject: Subject
    effective_at: datetime
    reason: str | None  # None: a consent change, whose reason code the docs do not name
    processed: bool = False


def revoking(change: ConsentChange) -> bool:
    """docs/revocation.md: a setting that withdraws data."""
    if change.key.startswith("block_partner."):
        return change.value
    withdrawing_key = change.key == "share_with_partners" or change.key.startswith(("share.", "purpose."))
    return withdrawing_key and not change.value


def intent_of(event: PlatformEvent) -> Intent | None:
    if event.type in ACCOUNT_EVENTS:
        reason = ACCOUNT_EVENTS[event.type][1]
        return None if reason is None else Intent(Subject("user", event.user_id), event.at, reason)
    if event.type == COUNTRY_EVENT:
        return Intent(Subject("user", event.user_id), event.at, "country_changed")
    table, reason = CONTENT_EVENTS[event.type]
    if table == "posts":
        return Intent(Subject("post", event.user_id, event.post_id), event.at, reason)
    return Intent(Subject(FORGET_SCOPES[table], event.user_id, event.post_id, table), event.at, reason)


# --- releases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgetExpected:
    scope: str
    subject_key: str
    reasons: frozenset[str] | None  # acceptable reason codes; None: any non-empty code


# platform identity of a release row: post_id, (user_id, post_id) or user_id
Identity = int | tuple[int, int]


@dataclass
class Share:
    """One agreement's tables as the oracle expects them, and their history."""

    agreement: Agreement
    secret: bytes
    release_at: datetime | None = None  # T of the latest build
    builds: list[datetime] = field(default_factory=list)  # T of every build: the ledger_head rows
    tables: dict[str, dict[Identity, dict[str, Any]]] = field(default_factory=dict)
    forget: list[ForgetExpected] = field(default_factory=list)
    texts_ever: dict[int, set[str]] = field(default_factory=dict)  # post_id -> texts it was released with
    keys_ever: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)  # table -> identities released

    def user_key(self, user_id: int) -> str:
        return pseudonym(self.secret, "user", user_id)

    def post_key(self, post_id: int) -> str:
        return pseudonym(self.secret, "post", post_id)

    def rows(self, category: str) -> list[dict[str, Any]]:
        return list(self.tables.get(category, {}).values())

    def revoked_texts(self) -> set[str]:
        """Texts of posts this share released once and holds no more (docs/sharing.md: never served again)."""
        current = self.tables.get("posts", {})
        return {t for post_id, texts in self.texts_ever.items() if post_id not in current for t in texts}

    def remember(self) -> None:
        """What this release holds: the texts, and every row's identity (a change feed may name no other)."""
        for post_id, row in self.tables.get("posts", {}).items():
            if "text" in row and isinstance(post_id, int):
                self.texts_ever.setdefault(post_id, set()).add(row["text"])
        for category, rows in self.tables.items():
            identity = IDENTITY[category]
            self.keys_ever.setdefault(category, set()).update(
                tuple(r[k] for k in identity) for r in rows.values()
            )


class Oracle:
    """Replays a world's steps and says, after each, what every share must hold."""

    def __init__(self, master_key: bytes) -> None:
        self.master_key = master_key
        self.policy: Policy | None = None
        self.platform = Platform()
        self.intents: list[Intent] = []
        self.shares: dict[str, Share] = {}  # agreement id -> share, in creation order
        self.partners: set[str] = set()

    # --- steps --------------------------------------------------------------------------------

    def apply(self, step: Step) -> None:
        if isinstance(step, ApplyPolicy):
            self.policy = parse_policy(step.text)
        elif isinstance(step, AddPartner):
            self.partners.add(step.name)
        elif isinstance(step, CreateAgreement):
            agreement = parse_agreement(step.text)
            self.shares[agreement.agreement_id] = Share(
                agreement, agreement_secret(self.master_key, agreement.agreement_id)
            )
        elif isinstance(step, Ingest):
            self.platform.ingest(step)
        elif isinstance(step, Curate):
            self.platform.curate()
        elif isinstance(step, RecordConsent):
            for change in step.changes:
                self.platform.consent.append(change)
                if revoking(change):
                    self.intents.append(Intent(Subject("user", change.user_id), change.at, None))
        elif isinstance(step, SubmitEvents):
            for event in step.events:
                self.platform.events.append(event)
                intent = intent_of(event)
                if intent is not None:
                    self.intents.append(intent)
        elif isinstance(step, Build):
            self.batch(step.at)
            self.build(step.agreement_id, step.at)
        elif isinstance(step, KilledBuild) and step.crashpoint == "after_ledger":
            self.batch(step.at)  # killed after its ledger row committed: the release exists
            self.build(step.agreement_id, step.at)
        elif isinstance(step, KilledBuild):
            self.apply_failed_build(step)
        elif isinstance(step, RevocationBatch):
            self.batch(step.now)

    def apply_failed_build(self, step: Build | KilledBuild) -> None:
        """A build that died: the batch it runs first stands, the build leaves the previous release
        visible (docs/releases.md "All or nothing")."""
        self.batch(step.at)

    def require_policy(self) -> Policy:
        if self.policy is None:
            raise OracleError("no policy applied yet")
        return self.policy

    # --- what may go out -----------------------------------------------------------------------

    def _post_allowed(self, share: Share, post_id: int, at: datetime, rules_at: datetime | None) -> bool:
        post = self.platform.post(post_id)
        record = Record(
            "posts", self.platform.user(post.author_id), post.created_at, post.deleted_at, post.visibility
        )
        consent = self.platform.consent_at(post.author_id, at)
        return not decide(self.require_policy(), record, consent, share.agreement, at, rules_at=rules_at)

    def _engagement_allowed(
        self, share: Share, table: str, pair: tuple[int, int], at: datetime, rules_at: datetime | None
    ) -> bool:
        """docs/releases.md "A like links two people": the liker's record and the post, as a post."""
        row = self.platform.engaged(table, pair)
        record = Record(table, self.platform.user(row.user_id), row.created_at, row.deleted_at)
        consent = self.platform.consent_at(row.user_id, at)
        if decide(self.require_policy(), record, consent, share.agreement, at, rules_at=rules_at):
            return False
        return self._post_allowed(share, row.post_id, at, rules_at)

    def _profile_allowed(self, share: Share, user_id: int, at: datetime, rules_at: datetime | None) -> bool:
        user = self.platform.user(user_id)
        record = Record("profile", user, user.created_at)
        consent = self.platform.consent_at(user_id, at)
        return not decide(self.require_policy(), record, consent, share.agreement, at, rules_at=rules_at)

    def _row(self, share: Share, category: str, identity: Identity) -> dict[str, Any]:
        fields = share.agreement.fields[category]
        if category == "posts":
            assert isinstance(identity, int)
            post = self.platform.post(identity)
            cur = curated(self.platform.curated[identity])
            values: dict[str, Any] = {
                "text": cur.text,
                "created_at": post.created_at,
                "lang": post.lang,
                "sentiment": cur.sentiment,
                "sentiment_label": cur.sentiment_label,
                "pii_types": cur.pii_types,
            }
            keys = {"post_key": share.post_key(identity), "user_key": share.user_key(post.author_id)}
        elif category == "profile":
            assert isinstance(identity, int)
            user = self.platform.user(identity)
            values = {
                "country": user.country,
                "region": self.require_policy().region_of(user.country),
                "created_at": user.created_at,
            }
            keys = {"user_key": share.user_key(identity)}
        else:
            assert isinstance(identity, tuple)
            values = {"created_at": self.platform.engaged(category, identity).created_at}
            keys = {"user_key": share.user_key(identity[0]), "post_key": share.post_key(identity[1])}
        return {**keys, **{f: values[f] for f in fields}}

    def desired(self, share: Share, at: datetime) -> dict[str, dict[Identity, dict[str, Any]]]:
        """docs/releases.md "What a release is": every record the policy and the settings allow at T."""
        out: dict[str, dict[Identity, dict[str, Any]]] = {}
        for category in share.agreement.categories:
            ids: list[Identity]
            if category == "posts":
                ids = [
                    p
                    for p in sorted(self.platform.posts)
                    if p in self.platform.curated and self._post_allowed(share, p, at, None)
                ]
            elif category == "profile":
                ids = [u for u in sorted(self.platform.users) if self._profile_allowed(share, u, at, None)]
            else:
                ids = [
                    pair
                    for pair in sorted(self.platform.engagement[category])
                    if self._engagement_allowed(share, category, pair, at, None)
                ]
            out[category] = {i: self._row(share, category, i) for i in ids}
        return out

    def build(self, agreement_id: str, at: datetime) -> None:
        share = self.shares[agreement_id]
        if share.agreement.status != "active" or not share.agreement.in_term(at):
            raise OracleError(f"{agreement_id} cannot be built at {at}: not active or outside its term")
        share.tables = self.desired(share, at)
        share.release_at = at
        share.builds.append(at)
        share.remember()

    # --- revocation ----------------------------------------------------------------------------

    def batch(self, now: datetime) -> None:
        """docs/revocation.md "The worker": intents in effect, oldest first, withdrawn from every share
        that has released data; deletes only; forget entries for subjects that had rows deleted."""
        until = self.platform.applied_until
        self.platform.applied_until = now if until is None else max(until, now)
        due = [i for i in self.intents if not i.processed and i.effective_at <= now]
        if not due:
            return
        for share in self.shares.values():
            if share.release_at is not None:
                self._withdraw(share, due, now, share.release_at)
        for intent in due:
            intent.processed = True

    def _withdraw(self, share: Share, due: list[Intent], now: datetime, rules_at: datetime) -> None:
        users = {i.subject.user_id for i in due if i.subject.scope == "user"}
        posts = {
            i.subject.post_id for i in due if i.subject.scope == "post" and i.subject.post_id is not None
        }
        pairs = {
            (i.subject.table, i.subject.user_id, i.subject.post_id)
            for i in due
            if i.subject.table is not None
        }
        posts |= {p.post_id for p in self.platform.posts.values() if p.author_id in users}
        deleted: dict[str, list[dict[str, Any]]] = {}
        for category, rows in share.tables.items():
            gone = []
            for identity in list(rows):
                if category == "posts":
                    assert isinstance(identity, int)
                    reconsidered = identity in posts
                    keep = not reconsidered or self._post_allowed(share, identity, now, rules_at)
                elif category == "profile":
                    assert isinstance(identity, int)
                    reconsidered = identity in users
                    keep = not reconsidered or self._profile_allowed(share, identity, now, rules_at)
                else:
                    assert isinstance(identity, tuple)
                    reconsidered = (
                        identity[0] in users or identity[1] in posts or (category, *identity) in pairs
                    )
                    keep = not reconsidered or self._engagement_allowed(
                        share, category, identity, now, rules_at
                    )
                if not keep:
                    gone.append(rows.pop(identity))
            deleted[category] = gone
        share.forget += self._forget(share, due, deleted)

    def _forget(
        self, share: Share, due: list[Intent], deleted: Mapping[str, list[dict[str, Any]]]
    ) -> list[ForgetExpected]:
        subjects: dict[tuple[str, str], set[str | None]] = {}
        users: dict[str, int] = {}
        for intent in due:
            s = intent.subject
            if s.scope == "user":
                key = share.user_key(s.user_id)
                users[key] = s.user_id
            elif s.scope == "post" and s.post_id is not None:
                key = share.post_key(s.post_id)
            else:
                assert s.post_id is not None
                key = f"{share.user_key(s.user_id)}:{share.post_key(s.post_id)}"
            subjects.setdefault((s.scope, key), set()).add(intent.reason)
        authored = {
            share.post_key(post.post_id): share.user_key(post.author_id)
            for post in self.platform.posts.values()
            if share.user_key(post.author_id) in users
        }
        # Each deleted row counts for one subject: the person it belongs to (their rows, and rows
        # pointing at their posts), else the post it is about, else the engagement row itself.
        claimed: set[tuple[str, str]] = set()
        for table, rows in deleted.items():
            scope = FORGET_SCOPES.get(table)
            for row in rows:
                owner, target = row.get("user_key"), row.get("post_key")
                if owner in users:
                    claimed.add(("user", str(owner)))
                elif target in authored:
                    claimed.add(("user", authored[str(target)]))
                elif ("post", str(target)) in subjects:
                    claimed.add(("post", str(target)))
                elif scope is not None and (scope, f"{owner}:{target}") in subjects:
                    claimed.add((scope, f"{owner}:{target}"))
        reasons = {subject: codes for subject, codes in subjects.items() if subject in claimed}
        return [
            ForgetExpected(
                scope,
                key,
                None if None in codes else frozenset(c for c in codes if c is not None),
            )
            for (scope, key), codes in reasons.items()
        ]
