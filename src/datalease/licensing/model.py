"""Partners and agreements as plain, immutable data. Pure: no I/O.

An agreement licenses a scope of the platform's data (purposes × categories × regions × a content
window) to one partner for a term, with the fields it receives, a price and a deletion SLA. Its
`scope()` is what `policy.decide` and `policy.compile` take.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from datalease.errors import UserError
from datalease.policy.model import ANY, Scope
from datalease.policy.vocabulary import PARTNER_NAME_RE

AGREEMENT_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

STATUSES: Final = ("draft", "active", "suspended", "terminated")

# Which status may follow which. `terminated` is final; a changed contract is a new agreement.
STATUS_TRANSITIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "draft": ("active", "terminated"),
    "active": ("suspended", "terminated"),
    "suspended": ("active", "terminated"),
    "terminated": (),
}

PRICING_MODELS: Final = ("flat_annual", "per_1k_records", "per_query")
# The contributor fund's share of an agreement's revenue, in percent, when its YAML does not say.
DEFAULT_FUND_SHARE: Final = Decimal(20)

DEFAULT_RETENTION_DAYS: Final = 7
MIN_RETENTION_DAYS: Final = 1
MAX_RETENTION_DAYS: Final = 365
MIN_DELETION_SLA_HOURS: Final = 1
MAX_DELETION_SLA_HOURS: Final = 8760  # one year


@dataclass(frozen=True)
class FieldSpec:
    """One field a partner may receive: what it is and where the platform keeps it."""

    description: str
    source: str  # table.column in the platform lake (curated columns are computed once at ingest)


# The fields an agreement may list, per category. Partner-visible keys are not listed here: they are
# always present (see KEY_FIELDS). Raw text is never offered; `text` is the PII-scrubbed text.
FIELD_CATALOGUE: Final[Mapping[str, Mapping[str, FieldSpec]]] = {
    "posts": {
        "text": FieldSpec(
            "the post text with PII scrubbed (the raw text is never offered)", "posts_curated.text_scrubbed"
        ),
        "created_at": FieldSpec("when the post was written (UTC)", "posts.created_at"),
        "lang": FieldSpec("language code of the post, when known", "posts.lang"),
        "sentiment": FieldSpec(
            "VADER compound sentiment score in [-1, 1]", "posts_curated.sentiment_compound"
        ),
        "sentiment_label": FieldSpec("negative, neutral or positive", "posts_curated.sentiment_label"),
        "pii_types": FieldSpec(
            "the kinds of PII that were scrubbed from the text", "posts_curated.pii_types"
        ),
    },
    "likes": {"created_at": FieldSpec("when the post was liked (UTC)", "likes.created_at")},
    "reposts": {"created_at": FieldSpec("when the post was reposted (UTC)", "reposts.created_at")},
    "bookmarks": {"created_at": FieldSpec("when the post was bookmarked (UTC)", "bookmarks.created_at")},
    "profile": {
        "country": FieldSpec("ISO-3166 alpha-2 country of the account", "users.country"),
        "region": FieldSpec(
            "the policy region of that country ('*' when in no named region)", "users.country"
        ),
        "created_at": FieldSpec("when the account was created (UTC)", "users.created_at"),
    },
}

# Partner-visible keys: HMAC(agreement secret, platform id), added to every row automatically.
KEY_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "posts": ("post_key", "user_key"),
    "likes": ("user_key", "post_key"),
    "reposts": ("user_key", "post_key"),
    "bookmarks": ("user_key", "post_key"),
    "profile": ("user_key",),
}

# Platform identifiers that never leave the platform, and what the partner gets instead.
RAW_ID_FIELDS: Final[Mapping[str, str]] = {
    "user_id": "user_key",
    "post_id": "post_key",
    "author_id": "user_key",
    "handle": "user_key",
    "birth_date": "nothing (only adults' data is shared at all)",
}
RAW_TEXT_FIELDS: Final = ("raw_text", "text_raw", "original_text")


class LicensingError(UserError):
    """A licensing operation that cannot be done as asked; the message says what was expected."""


def check_partner_name(name: str) -> str:
    """Return `name` if it is a partner slug, else raise LicensingError saying what is expected."""
    if not isinstance(name, str) or not PARTNER_NAME_RE.match(name):
        raise LicensingError(
            f"partner name {name!r}: expected a lowercase slug of letters, digits, - or _ "
            "(at most 63 characters, starting with a letter or digit), such as lumen-labs"
        )
    return name


def check_agreement_id(agreement_id: str) -> str:
    if not isinstance(agreement_id, str) or not AGREEMENT_ID_RE.match(agreement_id):
        raise LicensingError(
            f"agreement id {agreement_id!r}: expected a lowercase slug of letters, digits, - or _ "
            "(at most 63 characters), such as lumen-genai-2025"
        )
    return agreement_id


@dataclass(frozen=True)
class Partner:
    """A licensee. `name` is the slug used everywhere (agreements, consent `block_partner.<name>`)."""

    name: str
    display_name: str
    contact: str | None
    created_at: datetime

    def __post_init__(self) -> None:
        check_partner_name(self.name)


@dataclass(frozen=True)
class Pricing:
    """flat_annual: `amount` per contract year; per_1k_records: per 1,000 records delivered;
    per_query: per query served. `amount` is exact (Decimal); `currency` is ISO-4217.
    `fund_share`: the percentage (0–100) of the revenue paid into the contributor fund."""

    model: str
    amount: Decimal
    currency: str
    fund_share: Decimal = DEFAULT_FUND_SHARE


@dataclass(frozen=True)
class Agreement:
    """One licence. Immutable once stored: a changed contract is a new agreement id.

    `term_end` and `content_until` are exclusive instants (a term written as `end: 2026-12-31`
    runs until 2027-01-01T00:00Z). `regions_allowed` None means every region; `"*"` names the
    region of the countries no named region of the policy lists.
    """

    agreement_id: str
    partner: str
    status: str
    purposes: tuple[str, ...]
    categories: tuple[str, ...]
    fields: Mapping[str, tuple[str, ...]] = field(hash=False)
    pricing: Pricing
    term_start: datetime
    term_end: datetime
    deletion_sla_hours: int
    regions_allowed: tuple[str, ...] | None = None
    regions_denied: tuple[str, ...] = ()
    content_from: datetime | None = None
    content_until: datetime | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    description: str = ""
    attestation_renewal_days: int = 365  # an attestation holds this long (issue 18)
    block_release_when_overdue: bool = False  # overdue model acknowledgements block the next build

    def scope(self) -> Scope:
        return Scope(
            purposes=self.purposes,
            categories=self.categories,
            partner=self.partner,
            regions_allowed=self.regions_allowed,
            regions_denied=self.regions_denied,
            content_from=self.content_from,
            content_until=self.content_until,
        )

    def columns(self, category: str) -> tuple[str, ...]:
        """What a partner receives for `category`: the keys, then the listed fields."""
        return (*KEY_FIELDS[category], *self.fields[category])

    def in_term(self, at: datetime) -> bool:
        return self.term_start <= at < self.term_end

    def covers_regions(self, region_names: tuple[str, ...]) -> frozenset[str]:
        """The regions (of `region_names` plus `"*"`) this agreement's scope covers."""
        universe = (*region_names, ANY) if ANY not in region_names else region_names
        return frozenset(
            r
            for r in universe
            if r not in self.regions_denied and (self.regions_allowed is None or r in self.regions_allowed)
        )


@dataclass(frozen=True)
class AgreementRecord:
    """An agreement as stored: the columns that can be queried, the exact text and its hashes."""

    agreement_id: str
    partner: str
    status: str
    term_start: datetime
    term_end: datetime
    sha256: str  # of source_text
    content_sha256: str  # of the agreement's content (see content_fingerprint)
    created_at: datetime
    status_changed_at: datetime
    source_text: str = field(repr=False)


def term_last_day_text(end: datetime) -> str:
    """The inclusive end of a term as people write it: an exclusive midnight shows as the day before."""
    if end.timetz().replace(tzinfo=None) == time(0):
        return (end - timedelta(days=1)).date().isoformat()
    return end.isoformat()


def describe_term(start: datetime, end: datetime) -> str:
    start_text = (
        start.date().isoformat() if start.timetz().replace(tzinfo=None) == time(0) else start.isoformat()
    )
    return f"{start_text} to {term_last_day_text(end)}"


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def agreement_to_dict(agreement: Agreement) -> dict[str, Any]:
    """A JSON-ready view of an agreement (for `agreement show --json` and the content fingerprint)."""
    return {
        "agreement": agreement.agreement_id,
        "partner": agreement.partner,
        "status": agreement.status,
        "description": agreement.description,
        "term": {"start": _instant(agreement.term_start), "end": _instant(agreement.term_end)},
        "purposes": list(agreement.purposes),
        "categories": list(agreement.categories),
        "regions": {
            "allowed": None if agreement.regions_allowed is None else list(agreement.regions_allowed),
            "denied": list(agreement.regions_denied),
        },
        "content_window": {
            "from": _instant(agreement.content_from),
            "until": _instant(agreement.content_until),
        },
        "fields": {category: list(names) for category, names in agreement.fields.items()},
        "pricing": {
            "model": agreement.pricing.model,
            "amount": str(agreement.pricing.amount),
            "currency": agreement.pricing.currency,
            # Only when not the default, so that the fingerprints of older agreements stay the same.
            **(
                {"fund_share": str(agreement.pricing.fund_share)}
                if agreement.pricing.fund_share != DEFAULT_FUND_SHARE
                else {}
            ),
        },
        "deletion_sla_hours": agreement.deletion_sla_hours,
        "retention_days": agreement.retention_days,
        # Issue 18's settings appear only when set, so earlier agreements keep their fingerprints.
        **(
            {"attestation_renewal_days": agreement.attestation_renewal_days}
            if agreement.attestation_renewal_days != DEFAULT_ATTESTATION_RENEWAL_DAYS
            else {}
        ),
        **({"block_release_when_overdue": True} if agreement.block_release_when_overdue else {}),
    }


def content_fingerprint(agreement: Agreement) -> str:
    """sha256 of what the agreement says, ignoring its status and the formatting of its text.

    Two texts with the same fingerprint are the same contract; status is managed separately.
    """
    content = agreement_to_dict(replace(agreement, status="draft"))
    del content["status"]
    # Order-insensitive lists: [posts, reposts] and [reposts, posts] are the same scope.
    for key in ("purposes", "categories"):
        content[key] = sorted(content[key])
    regions = content["regions"]
    regions["denied"] = sorted(regions["denied"])
    if regions["allowed"] is not None:
        regions["allowed"] = sorted(regions["allowed"])
    content["fields"] = {category: sorted(names) for category, names in sorted(content["fields"].items())}
    content["pricing"]["amount"] = str(agreement.pricing.amount.normalize())
    if "fund_share" in content["pricing"]:
        content["pricing"]["fund_share"] = str(agreement.pricing.fund_share.normalize())
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def check_status_change(agreement_id: str, current: str, new: str) -> None:
    """Raise LicensingError unless `current` → `new` is an allowed transition (same status is fine)."""
    if new not in STATUSES:
        raise LicensingError(f"status {new!r}: expected one of {', '.join(STATUSES)}")
    if new == current or new in STATUS_TRANSITIONS[current]:
        return
    allowed = STATUS_TRANSITIONS[current]
    hint = f"expected one of {', '.join(allowed)}" if allowed else "a terminated agreement is final"
    raise LicensingError(f"agreement {agreement_id}: cannot go from {current} to {new}; {hint}")


# --- provenance (issue 18): attestations, model lineage, per-model acknowledgements ------------------

DEFAULT_ATTESTATION_RENEWAL_DAYS: Final = 365
ACK_OUTCOMES: Final = ("retrained", "certificate")


@dataclass(frozen=True)
class Attestation:
    """A partner's signed statement for one agreement: what it accepts and how to reach it."""

    attestation_id: int
    agreement_id: str
    partner: str
    signer: str
    contact: str  # for deletion requests
    intended_use: str
    accepted_prohibited_uses: tuple[str, ...]
    recorded_at: datetime
    valid_until: datetime

    def valid_at(self, at: datetime) -> bool:
        return self.recorded_at <= at < self.valid_until


@dataclass(frozen=True)
class ModelLineage:
    """One declared fact: model version `model_id` of `partner` was trained on release `release_id`."""

    partner: str
    model_id: str
    agreement_id: str
    release_id: int
    declared_at: datetime


@dataclass(frozen=True)
class ModelAck:
    """For one forget entry, what happened to one model: retrained without the data, or a certificate."""

    forget_id: str
    model_id: str
    outcome: str  # retrained | certificate
    certificate: str | None
    acked_at: datetime
