"""The fixed words of the domain: categories, purposes, mechanisms, setting keys and reason codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

CATEGORIES: Final = ("posts", "likes", "reposts", "bookmarks", "profile")
# Categories whose records link a person to a post (a like, a repost, a bookmark).
ENGAGEMENT: Final = ("likes", "reposts", "bookmarks")

# fideslang data-use names. A purpose covers its descendants: consenting to or refusing
# `train_ai_system` applies to `train_ai_system.generative` too.
PURPOSES: Final = (
    "train_ai_system",
    "train_ai_system.generative",
    "train_ai_system.non_generative",
    "third_party_sharing",
    "third_party_sharing.independent",
)

MECHANISMS: Final = ("opt_out", "opt_in", "excluded")

MASTER_KEY: Final = "share_with_partners"
CATEGORY_KEY_PREFIX: Final = "share."
PURPOSE_KEY_PREFIX: Final = "purpose."
PARTNER_BLOCK_PREFIX: Final = "block_partner."
POST_KEY_PREFIX: Final = "post."  # post.<post_id>.ai_training: one post kept out of AI training
POST_KEY_SUFFIX: Final = ".ai_training"
# Preference signals a browser sends (issue 15): `signal.gpc` = true once a request carried Sec-GPC: 1.
SIGNAL_PREFIX: Final = "signal."
SIGNALS: Final = ("gpc",)

PARTNER_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def purpose_lineage(purpose: str) -> tuple[str, ...]:
    """The purpose and its ancestors, most general first: a.b.c -> (a, a.b, a.b.c)."""
    parts = purpose.split(".")
    return tuple(".".join(parts[: i + 1]) for i in range(len(parts)))


def purpose_family(purpose: str) -> tuple[str, ...]:
    """The purpose and every purpose it covers: asking for a purpose is asking for all of them."""
    return (purpose, *(p for p in PURPOSES if p.startswith(purpose + ".")))


def category_key(category: str) -> str:
    return f"{CATEGORY_KEY_PREFIX}{category}"


def purpose_key(purpose: str) -> str:
    return f"{PURPOSE_KEY_PREFIX}{purpose}"


def partner_block_key(partner: str) -> str:
    return f"{PARTNER_BLOCK_PREFIX}{partner}"


def post_choice_key(post_id: int) -> str:
    return f"{POST_KEY_PREFIX}{post_id}{POST_KEY_SUFFIX}"


def post_of_choice_key(key: str) -> int | None:
    """The post a per-post key is about (None: not a well-formed per-post key)."""
    if not (key.startswith(POST_KEY_PREFIX) and key.endswith(POST_KEY_SUFFIX)):
        return None
    digits = key[len(POST_KEY_PREFIX) : len(key) - len(POST_KEY_SUFFIX)]
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19 or int(digits) >= 2**63:
        return None
    if str(int(digits)) != digits:  # canonical: no leading zeros (one key per post)
        return None
    return int(digits)


def signal_key(signal: str) -> str:
    return f"{SIGNAL_PREFIX}{signal}"


@dataclass(frozen=True)
class RevokingSetting:
    """A family of settings whose change to `value` withdraws data from partners, and the reason
    partners see: a share or a purpose switched off, a partner blocked."""

    key: str  # the key itself, or the prefix of the family when `prefix`
    prefix: bool
    value: bool
    reason: str

    def matches(self, key: str) -> bool:
        return key.startswith(self.key) if self.prefix else key == self.key


# The one definition of which settings revoke: the store generates the revocation outbox's SQL from it,
# and revocation subjects take their reason code from it.
REVOKING_SETTINGS: Final = (
    RevokingSetting(MASTER_KEY, False, False, "opted_out"),
    RevokingSetting(CATEGORY_KEY_PREFIX, True, False, "category_opted_out"),
    RevokingSetting(PURPOSE_KEY_PREFIX, True, False, "purpose_opted_out"),
    RevokingSetting(PARTNER_BLOCK_PREFIX, True, True, "partner_blocked"),
    RevokingSetting(POST_KEY_PREFIX, True, False, "post_opted_out"),
    RevokingSetting(SIGNAL_PREFIX, True, True, "signal_opt_out"),
)


def revoking_setting(key: str) -> RevokingSetting | None:
    """The revoking family `key` belongs to (None: a change of it never withdraws data)."""
    return next((r for r in REVOKING_SETTINGS if r.matches(key)), None)


def revokes(key: str, value: bool) -> bool:
    """Whether setting `key` to `value` withdraws data from partners."""
    family = revoking_setting(key)
    return family is not None and family.value == value


class SettingKeyError(ValueError):
    """A consent setting key outside the vocabulary."""


def validate_setting_key(key: str) -> str:
    """Return the key if it is one of the setting families, else raise with what was expected."""
    if key == MASTER_KEY:
        return key
    if key.startswith(CATEGORY_KEY_PREFIX):
        if key.removeprefix(CATEGORY_KEY_PREFIX) in CATEGORIES:
            return key
        raise SettingKeyError(
            f"{key!r}: expected share.<category> with category one of {', '.join(CATEGORIES)}"
        )
    if key.startswith(PURPOSE_KEY_PREFIX):
        if key.removeprefix(PURPOSE_KEY_PREFIX) in PURPOSES:
            return key
        raise SettingKeyError(
            f"{key!r}: expected purpose.<purpose> with purpose one of {', '.join(PURPOSES)}"
        )
    if key.startswith(PARTNER_BLOCK_PREFIX):
        if PARTNER_NAME_RE.match(key.removeprefix(PARTNER_BLOCK_PREFIX)):
            return key
        raise SettingKeyError(
            f"{key!r}: expected block_partner.<partner> with a partner name of lowercase letters, digits, - or _"
        )
    if key.startswith(POST_KEY_PREFIX):
        if post_of_choice_key(key) is not None:
            return key
        raise SettingKeyError(f"{key!r}: expected post.<post_id>.ai_training with a numeric post id")
    if key.startswith(SIGNAL_PREFIX):
        if key.removeprefix(SIGNAL_PREFIX) in SIGNALS:
            return key
        raise SettingKeyError(f"{key!r}: expected signal.<signal> with signal one of {', '.join(SIGNALS)}")
    raise SettingKeyError(
        f"{key!r}: expected one of {MASTER_KEY}, share.<category>, purpose.<purpose>, "
        "block_partner.<partner>, post.<post_id>.ai_training, signal.<signal>"
    )


_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})


def parse_setting_value(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r}: expected true/false (also on/off, yes/no, 1/0)")


class Reason:
    """Stable reason codes a decision carries. Strings, so they survive JSON, SQL and logs."""

    BEFORE_POLICY_EFFECTIVE: Final = "before_policy_effective"
    NO_RULE: Final = "no_rule"
    NOT_IN_POLICY: Final = "not_in_policy"
    REGION_EXCLUDED: Final = "region_excluded"
    EXCLUDED_BY_POLICY: Final = "excluded_by_policy"
    OPTED_OUT: Final = "opted_out"
    POST_OPTED_OUT: Final = "post_opted_out"
    OPT_IN_REQUIRED: Final = "opt_in_required"
    PURPOSE_NOT_CONSENTED: Final = "purpose_not_consented"
    PARTNER_BLOCKED: Final = "partner_blocked"
    MINOR: Final = "minor"
    AGE_UNKNOWN: Final = "age_unknown"
    PROTECTED_ACCOUNT: Final = "protected_account"
    ACCOUNT_SUSPENDED: Final = "account_suspended"
    ACCOUNT_DEACTIVATED: Final = "account_deactivated"
    ACCOUNT_DELETED: Final = "account_deleted"
    CONTENT_DELETED: Final = "content_deleted"
    NOT_PUBLIC: Final = "not_public"
    NOT_YET_CREATED: Final = "not_yet_created"
    OUTSIDE_AGREEMENT_REGIONS: Final = "outside_agreement_regions"
    OUTSIDE_CONTENT_WINDOW: Final = "outside_content_window"
    REGULATOR_ORDER: Final = "regulator_order"
    NOT_NOTIFIED: Final = "not_notified"
    SIGNAL_OPT_OUT: Final = "signal_opt_out"


# Canonical order: reasons are always reported in this order, hard exclusions first.
REASON_ORDER: Final = (
    Reason.BEFORE_POLICY_EFFECTIVE,
    Reason.ACCOUNT_DELETED,
    Reason.ACCOUNT_DEACTIVATED,
    Reason.ACCOUNT_SUSPENDED,
    Reason.PROTECTED_ACCOUNT,
    Reason.MINOR,
    Reason.AGE_UNKNOWN,
    Reason.CONTENT_DELETED,
    Reason.NOT_PUBLIC,
    Reason.NOT_YET_CREATED,
    Reason.OUTSIDE_AGREEMENT_REGIONS,
    Reason.OUTSIDE_CONTENT_WINDOW,
    Reason.NOT_IN_POLICY,
    Reason.NO_RULE,
    Reason.REGION_EXCLUDED,
    Reason.EXCLUDED_BY_POLICY,
    Reason.OPTED_OUT,
    Reason.POST_OPTED_OUT,
    Reason.OPT_IN_REQUIRED,
    Reason.PURPOSE_NOT_CONSENTED,
    Reason.PARTNER_BLOCKED,
    Reason.REGULATOR_ORDER,
    Reason.NOT_NOTIFIED,
    Reason.SIGNAL_OPT_OUT,
)

ACCOUNT_STATE_REASONS: Final = {
    "deleted": Reason.ACCOUNT_DELETED,
    "deactivated": Reason.ACCOUNT_DEACTIVATED,
    "suspended": Reason.ACCOUNT_SUSPENDED,
}
