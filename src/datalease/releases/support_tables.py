"""The tables of a share that are not licensed data: the forget list and the ledger head.

They are served beside the category tables but carry no personal data (keys of people to forget, the
consent chain's head), are never billed or counted as records delivered, never hold a person's rows
and are never withdrawn per user. Every place that reads a release's tables as licensed data asks
`is_licensed_data`; the two writers are `revocation/forget_table.py` and `releases/ledger_head.py`.
"""

from __future__ import annotations

from typing import Final

FORGET: Final = "forget"
LEDGER_HEAD: Final = "ledger_head"
SUPPORT_TABLES: Final = frozenset({FORGET, LEDGER_HEAD})
# The columns that identify a row of each (the category tables' are in releases/plan.py IDENTITY).
SUPPORT_IDENTITY: Final[dict[str, tuple[str, ...]]] = {FORGET: ("forget_id",), LEDGER_HEAD: ("release_id",)}


def is_licensed_data(table: str) -> bool:
    """Whether a share's table holds licensed data (a category), not a support table."""
    return table not in SUPPORT_TABLES
