"""YAML text → Agreement, checked against the policy; every problem as FILE:LINE:COL: field: expected.

The format is documented in docs/agreements.md. Checks that need the store (does the partner exist,
does another active agreement overlap) are in `licensing.validate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import pycountry
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from datalease.licensing.fund import DEFAULT_FUND_SHARE, FUND_SHARE_EXPECTED, fund_share
from datalease.licensing.model import (
    AGREEMENT_ID_RE,
    DEFAULT_ATTESTATION_RENEWAL_DAYS,
    DEFAULT_RETENTION_DAYS,
    FIELD_CATALOGUE,
    KEY_FIELDS,
    MAX_DELETION_SLA_HOURS,
    MAX_RETENTION_DAYS,
    MIN_DELETION_SLA_HOURS,
    MIN_RETENTION_DAYS,
    PRICING_MODELS,
    RAW_ID_FIELDS,
    RAW_TEXT_FIELDS,
    STATUSES,
    Agreement,
    Pricing,
)
from datalease.policy.documents import read_document
from datalease.policy.model import ANY, Policy
from datalease.policy.problems import Reader, as_instant, describe
from datalease.policy.vocabulary import PARTNER_NAME_RE

TOP_KEYS: Final = (
    "agreement",
    "partner",
    "status",
    "description",
    "term",
    "purposes",
    "categories",
    "regions",
    "content_window",
    "fields",
    "pricing",
    "deletion_sla_hours",
    "retention_days",
    "attestation_renewal_days",
    "block_release_when_overdue",
)
REQUIRED_KEYS: Final = (
    "agreement",
    "partner",
    "term",
    "purposes",
    "categories",
    "fields",
    "pricing",
    "deletion_sla_hours",
)
TERM_KEYS: Final = ("start", "end")
REGION_KEYS: Final = ("allowed", "denied")
WINDOW_KEYS: Final = ("from", "until")
PRICING_KEYS: Final = ("model", "amount", "currency", "fund_share")
NOT_CURRENCIES: Final = frozenset({"XXX", "XTS"})  # ISO-4217 "no currency" and "testing"
BARE_DATE_RE: Final = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
INSTANT_EXPECTED: Final = "a date such as 2025-01-01 or an ISO-8601 date-time such as 2025-01-01T00:00:00Z"


def load_agreement(text: str, source: str = "<agreement>", *, policy: Policy) -> Agreement:
    """Parse and check an agreement document against `policy`. Raises ProblemsError with every problem."""
    reader, root = read_document(text, source, TOP_KEYS)
    for key in REQUIRED_KEYS:
        reader.required(root, key, "")
    agreement_id = reader.scalar(
        root,
        "agreement",
        "",
        _slug(AGREEMENT_ID_RE),
        "an id of lowercase letters, digits, - or _ such as lumen-genai-2025",
        "",
    )
    partner = reader.scalar(
        root,
        "partner",
        "",
        _slug(PARTNER_NAME_RE),
        "a partner name of lowercase letters, digits, - or _ such as lumen-labs",
        "",
    )
    status = reader.choice(root, "status", "", STATUSES) or "draft"
    description = reader.string(root, "description", "")
    term_start, term_end = _term(reader, root)
    purposes = _non_empty_names(reader, root, "purposes", policy.purposes, "purpose")
    categories = _non_empty_names(reader, root, "categories", policy.categories, "category")
    regions_allowed, regions_denied = _regions(reader, root, policy)
    content_from, content_until = _content_window(reader, root)
    fields = _fields(reader, root, categories)
    pricing = _pricing(reader, root)
    deletion_sla_hours = reader.scalar(
        root,
        "deletion_sla_hours",
        "",
        _whole(MIN_DELETION_SLA_HOURS, MAX_DELETION_SLA_HOURS),
        f"a whole number of hours from {MIN_DELETION_SLA_HOURS} to {MAX_DELETION_SLA_HOURS}",
        0,
    )
    retention_days = reader.scalar(
        root,
        "retention_days",
        "",
        _whole(MIN_RETENTION_DAYS, MAX_RETENTION_DAYS),
        f"a whole number of days from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}",
        DEFAULT_RETENTION_DAYS,
    )
    renewal_days = reader.scalar(
        root,
        "attestation_renewal_days",
        "",
        _whole(1, 3660),
        "a whole number of days from 1 to 3660",
        DEFAULT_ATTESTATION_RENEWAL_DAYS,
    )
    block_when_overdue = reader.boolean(root, "block_release_when_overdue", "", False)
    reader.raise_if_any()
    assert term_start is not None and term_end is not None and pricing is not None
    return Agreement(
        agreement_id=agreement_id,
        partner=partner,
        status=status,
        purposes=purposes,
        categories=categories,
        fields=fields,
        pricing=pricing,
        term_start=term_start,
        term_end=term_end,
        deletion_sla_hours=deletion_sla_hours,
        regions_allowed=regions_allowed,
        regions_denied=regions_denied,
        content_from=content_from,
        content_until=content_until,
        retention_days=retention_days,
        description=description,
        attestation_renewal_days=renewal_days,
        block_release_when_overdue=block_when_overdue,
    )


# --- converters ---------------------------------------------------------------------------------


def _slug(pattern: re.Pattern[str]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if isinstance(value, str) and pattern.match(value):
            return value
        raise ValueError(value)

    return convert


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return int(value)
        raise ValueError(value)

    return convert


def fixed_instant(value: Any) -> datetime:
    """An instant written in the document. `now` is refused: a stored agreement must re-read the same."""
    if isinstance(value, str) and value.strip().lower() == "now":
        raise ValueError(value)
    return as_instant(value)


def is_bare_date(value: Any) -> bool:
    if isinstance(value, datetime):
        return False
    return isinstance(value, date) or (isinstance(value, str) and BARE_DATE_RE.match(value) is not None)


def amount(value: Any) -> Decimal:
    """A positive, finite, exact amount. Floats are read by their shortest text (0.1 is 0.1)."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        result = Decimal(int(value))
    elif isinstance(value, float):
        result = Decimal(repr(float(value)))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(value) from exc
    else:
        raise TypeError(value)
    if not result.is_finite() or result <= 0:
        raise ValueError(value)
    return result


def currency(value: Any) -> str:
    if (
        isinstance(value, str)
        and len(value) == 3
        and value.isascii()
        and value.isupper()
        and value not in NOT_CURRENCIES
        and pycountry.currencies.get(alpha_3=value) is not None
    ):
        return value
    raise ValueError(value)


# --- sections -----------------------------------------------------------------------------------


def _section(reader: Reader, root: CommentedMap, key: str, allowed: tuple[str, ...]) -> CommentedMap | None:
    if root.get(key) is None:
        return None
    node = reader.mapping(root[key], key, reader.value_position(root, key))
    if node is not None:
        reader.known_keys(node, key, allowed)
    return node


def _term(reader: Reader, root: CommentedMap) -> tuple[datetime | None, datetime | None]:
    node = _section(reader, root, "term", TERM_KEYS)
    if node is None:
        return None, None
    reader.required(node, "start", "term")
    reader.required(node, "end", "term")
    start = reader.scalar(node, "start", "term", fixed_instant, INSTANT_EXPECTED, None)
    end = reader.scalar(node, "end", "term", fixed_instant, INSTANT_EXPECTED, None)
    bare_end = end is not None and is_bare_date(node["end"])
    if end is not None and bare_end:
        end += timedelta(days=1)  # a term's end date is its last day
    if start is not None and end is not None and end <= start:
        written = (end - timedelta(days=1)).date().isoformat() if bare_end else end.isoformat()
        reader.report(
            reader.value_position(node, "end"),
            "term.end",
            f"expected the term to end on or after its start ({start.date()}), got {written}",
        )
        return None, None
    return start, end


def _non_empty_names(
    reader: Reader, root: CommentedMap, key: str, allowed: tuple[str, ...], noun: str
) -> tuple[str, ...]:
    names = reader.names(root, key, "", allowed)
    if names is not None and not names and isinstance(root[key], CommentedSeq) and not root[key]:
        reader.report(reader.value_position(root, key), key, f"expected at least one {noun}")
    return names or ()


def _regions(
    reader: Reader, root: CommentedMap, policy: Policy
) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    node = _section(reader, root, "regions", REGION_KEYS)
    if node is None:
        return None, ()
    choices = (*policy.regions, ANY)
    allowed = reader.names(node, "allowed", "regions", tuple(policy.regions), any_word=ANY)
    denied = reader.names(node, "denied", "regions", tuple(policy.regions), any_word=ANY) or ()
    if (
        allowed is not None
        and not allowed
        and isinstance(node["allowed"], CommentedSeq)
        and not node["allowed"]
    ):
        reader.report(
            reader.value_position(node, "allowed"),
            "regions.allowed",
            "expected at least one region; leave allowed out to cover every region",
        )
        return None, denied
    both = [r for r in denied if allowed is not None and r in allowed]
    if both:
        reader.report(
            reader.value_position(node, "denied"),
            "regions.denied",
            f"expected a region to be either allowed or denied, not both: {', '.join(both)}",
        )
    elif allowed is None and denied and all(r in denied for r in choices):
        reader.report(
            reader.value_position(node, "denied"),
            "regions.denied",
            f"expected at least one region left; these deny every region ({', '.join(choices)})",
        )
    return allowed, denied


def _content_window(reader: Reader, root: CommentedMap) -> tuple[datetime | None, datetime | None]:
    node = _section(reader, root, "content_window", WINDOW_KEYS)
    if node is None:
        return None, None
    starts = reader.scalar(node, "from", "content_window", fixed_instant, INSTANT_EXPECTED, None)
    ends = reader.scalar(node, "until", "content_window", fixed_instant, INSTANT_EXPECTED, None)
    if starts is not None and ends is not None and ends <= starts:
        reader.report(
            reader.value_position(node, "until"),
            "content_window.until",
            f"expected an instant after from ({starts.date()}); until is the first instant not included",
        )
    return starts, ends


def _fields(reader: Reader, root: CommentedMap, categories: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    if root.get("fields") is None:
        return {}
    node = reader.mapping(root["fields"], "fields", reader.value_position(root, "fields"))
    if node is None:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for category in node:
        field = f"fields.{category}"
        if category not in categories:
            if category in FIELD_CATALOGUE:
                expected = f"expected only categories the agreement licenses; add {category} to categories or remove this entry"
            else:
                expected = (
                    f"unknown category; expected one of the agreement's categories ({', '.join(categories)})"
                )
            reader.report(reader.key_position(node, category), field, expected)
            continue
        out[category] = _category_fields(reader, node, category)
    for category in categories:
        if category not in node:
            reader.report(
                reader.key_position(root, "fields"),
                f"fields.{category}",
                f"required field is missing; expected the {category} fields to deliver, from "
                f"{', '.join(FIELD_CATALOGUE[category])} ([] for the keys only)",
            )
    return {category: out[category] for category in categories if category in out}


def _category_fields(reader: Reader, node: CommentedMap, category: str) -> tuple[str, ...]:
    field = f"fields.{category}"
    catalogue = FIELD_CATALOGUE[category]
    value = node[category]
    if not isinstance(value, CommentedSeq):
        reader.report(
            reader.value_position(node, category),
            field,
            f"expected a list of fields from {', '.join(catalogue)} ([] for the keys only), got {describe(value)}",
        )
        return ()
    names: list[str] = []
    keys = " and ".join(KEY_FIELDS[category])
    for index, item in enumerate(value):
        position = reader.item_position(value, index)
        item_field = f"{field}[{index}]"
        if isinstance(item, str) and item in catalogue:
            if item in names:
                reader.report(position, item_field, f"expected each field once; {item} is listed twice")
            else:
                names.append(item)
        elif isinstance(item, str) and item in KEY_FIELDS[category]:
            reader.report(
                position,
                item_field,
                f"expected only data fields; {item} is always present ({keys} are HMAC pseudonyms "
                "added automatically), so leave it out",
            )
        elif isinstance(item, str) and item in RAW_ID_FIELDS:
            reader.report(
                position,
                item_field,
                f"expected one of {', '.join(catalogue)}; {item} is a platform identifier and is never "
                f"shared: partners get {keys}, HMAC pseudonyms added automatically",
            )
        elif isinstance(item, str) and item in RAW_TEXT_FIELDS:
            reader.report(
                position,
                item_field,
                f"expected one of {', '.join(catalogue)}; the raw text is never offered, "
                "text is the PII-scrubbed text",
            )
        else:
            reader.report(
                position, item_field, f"expected one of {', '.join(catalogue)}, got {describe(item)}"
            )
    return tuple(names)


def _pricing(reader: Reader, root: CommentedMap) -> Pricing | None:
    node = _section(reader, root, "pricing", PRICING_KEYS)
    if node is None:
        return None
    present = [reader.required(node, key, "pricing") for key in PRICING_KEYS[:3]]  # report every missing key
    ok = all(present)
    model = reader.choice(node, "model", "pricing", PRICING_MODELS)
    price = reader.scalar(
        node, "amount", "pricing", amount, "a positive amount such as 60000000 or 2.50", None
    )
    code = reader.scalar(
        node, "currency", "pricing", currency, "an ISO-4217 currency code such as USD or EUR", None
    )
    share = reader.scalar(node, "fund_share", "pricing", fund_share, FUND_SHARE_EXPECTED, DEFAULT_FUND_SHARE)
    if not ok or model is None or price is None or code is None:
        return None
    return Pricing(model=model, amount=price, currency=code, fund_share=share)
