"""YAML text → RegulatorOrder, checked against the policy it will apply to (docs/orders.md).

Every problem is reported as FILE:LINE:COL: field: what was expected, as for policies: a region the
policy does not name, a country that is not ISO-3166, a category or purpose the policy does not know,
an end before the start.
"""

from __future__ import annotations

import re
from typing import Final

from datalease.policy.documents import read_document
from datalease.policy.load import COUNTRY_CODES
from datalease.policy.model import ANY, Policy, RegulatorOrder
from datalease.policy.problems import describe

TOP_KEYS: Final = (
    "order",
    "issued_by",
    "reference",
    "regions",
    "countries",
    "categories",
    "purposes",
    "effective",
    "until",
    "note",
)
ORDER_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def load_order(text: str, source: str, policy: Policy) -> RegulatorOrder:
    """Parse and validate an order document. Raises ProblemsError listing every problem found."""
    reader, root = read_document(text, source, TOP_KEYS)
    for key in ("order", "issued_by", "reference", "effective"):
        reader.required(root, key, "")
    order_id = reader.string(root, "order", "")
    if "order" in root and order_id and not ORDER_ID_RE.match(order_id):
        reader.report(
            reader.value_position(root, "order"),
            "order",
            f"expected an id of letters, digits, '.', '-' or '_' (at most 64), got {describe(order_id)}",
        )
    regions = reader.names(root, "regions", "", tuple(policy.regions), allow_empty=False) or ()
    countries: list[str] = []
    for index, code, position in reader.items(root, "countries", ""):
        if not isinstance(code, str) or code not in COUNTRY_CODES:
            reader.report(
                position,
                f"countries[{index}]",
                f"expected an ISO-3166 alpha-2 country code such as DE, got {describe(code)}",
            )
        elif code not in countries:
            countries.append(code)
    if root.get("regions") is None and root.get("countries") is None:
        reader.report(
            reader.node_position(root),
            "regions",
            f"expected regions (one of {', '.join(policy.regions) or 'none defined'}) or countries",
        )
    categories = reader.names(root, "categories", "", policy.categories, any_word=ANY, allow_empty=False)
    purposes = reader.names(root, "purposes", "", policy.purposes, any_word=ANY, allow_empty=False)
    effective = reader.instant(root, "effective", "")
    until = reader.instant(root, "until", "")
    if effective is not None and until is not None and until <= effective:
        reader.report(
            reader.value_position(root, "until"),
            "until",
            f"expected an end after effective ({effective.isoformat()})",
        )
    reader.raise_if_any()
    assert effective is not None  # required, reported otherwise
    return RegulatorOrder(
        order_id=order_id,
        issued_by=reader.string(root, "issued_by", ""),
        reference=reader.string(root, "reference", ""),
        regions=tuple(regions),
        countries=tuple(countries),
        categories=categories or (ANY,),
        purposes=purposes or (ANY,),
        effective=effective,
        until=until,
        note=reader.string(root, "note", ""),
    )
