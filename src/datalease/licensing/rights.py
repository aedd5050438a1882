"""Machine-readable rights per shared table, modelled on the CAWG training-and-data-mining assertion
(`cawg.training-mining`, the C2PA/Creator Assertions Working Group format): for each of
`cawg.ai_training`, `cawg.ai_generative_training`, `cawg.ai_inference` and `cawg.data_mining`, a `use`
of `allowed`, `notAllowed` or `constrained` (with `constraint_info`).

Derived from the agreement as it is now (pure: no I/O), so the dataset card's front matter and the
table properties the sharing server's metadata answer carries always say the same thing.

Nothing here is ever plain `allowed`: every licensed use carries the agreement's obligations (no
re-identification, deletion within the SLA, the licensed purposes only), so it is `constrained`, and
the constraint says which. A use no purpose of the agreement licenses is `notAllowed`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from datalease.licensing.model import Agreement

LABEL: Final = "cawg.training-mining"
USES: Final = ("cawg.ai_training", "cawg.ai_generative_training", "cawg.ai_inference", "cawg.data_mining")
ALLOWED: Final = "allowed"
NOT_ALLOWED: Final = "notAllowed"
CONSTRAINED: Final = "constrained"
PROPERTY_PREFIX: Final = "datalease.rights."

TABLE_CONSTRAINTS: Final = {
    "posts": "post text is public on the platform: never search it to find its author or their other posts",
    "likes": "never combine likes with other data to recover who liked what",
    "reposts": "never combine reposts with other data to recover who reposted what",
    "bookmarks": "never combine bookmarks with other data to recover who saved what",
    "profile": "never combine country and account dates with other data to identify the person",
    "forget": "use only to delete the rows and model influence it names",
}


@dataclass(frozen=True)
class Entry:
    use: str
    constraint_info: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"use": self.use}
        if self.constraint_info:
            out["constraint_info"] = self.constraint_info
        return out


def _covers(agreement: Agreement, purpose: str) -> bool:
    """Whether a purpose of the agreement covers `purpose` (a purpose covers its descendants)."""
    return any(purpose == p or purpose.startswith(p + ".") for p in agreement.purposes)


def _obligations(agreement: Agreement, table: str) -> str:
    return (
        f"no re-identification of any person and no linking of keys across agreements; "
        f"{TABLE_CONSTRAINTS.get(table, 'no re-identification')}; delete rows named by a delete or the "
        f"forget table, and their influence on trained models, within {agreement.deletion_sla_hours} hours; "
        f"licensed purposes only ({', '.join(agreement.purposes)})"
    )


def training_mining(agreement: Agreement, table: str) -> dict[str, Entry]:
    """The four entries for one table of the agreement."""
    duty = _obligations(agreement, table)
    generative = _covers(agreement, "train_ai_system.generative")
    non_generative = _covers(agreement, "train_ai_system.non_generative")
    if _covers(agreement, "train_ai_system"):
        training = Entry(CONSTRAINED, duty)
    elif generative or non_generative:
        only = "generative" if generative else "non-generative"
        training = Entry(CONSTRAINED, f"{only} models only; {duty}")
    else:
        training = Entry(NOT_ALLOWED)
    independent = _covers(agreement, "third_party_sharing.independent")
    return {
        "cawg.ai_training": training,
        "cawg.ai_generative_training": Entry(CONSTRAINED, duty) if generative else Entry(NOT_ALLOWED),
        "cawg.ai_inference": Entry(CONSTRAINED, f"independent use as licensed; {duty}")
        if independent
        else Entry(NOT_ALLOWED),
        "cawg.data_mining": Entry(CONSTRAINED, duty) if agreement.purposes else Entry(NOT_ALLOWED),
    }


def assertion(agreement: Agreement, table: str) -> dict[str, object]:
    """The table's rights as a CAWG-style assertion: `{label, data: {entries: {...}}}`."""
    entries = training_mining(agreement, table)
    return {"label": LABEL, "data": {"entries": {k: entries[k].to_dict() for k in USES}}}


def card_rights(agreement: Agreement, tables: list[str]) -> dict[str, dict[str, object]]:
    """The `rights` mapping of the dataset card's front matter: table -> assertion."""
    return {table: assertion(agreement, table) for table in tables}


def table_properties(agreement: Agreement, table: str) -> dict[str, str]:
    """Delta-style table properties (strings) for the metadata answer's `configuration`:
    `datalease.rights.cawg.ai_training` = `constrained`, `….constraint_info`, and the whole assertion
    as JSON under `datalease.rights.assertion`."""
    out: dict[str, str] = {}
    for use, entry in training_mining(agreement, table).items():
        out[f"{PROPERTY_PREFIX}{use}"] = entry.use
        if entry.constraint_info:
            out[f"{PROPERTY_PREFIX}{use}.constraint_info"] = entry.constraint_info
    out[f"{PROPERTY_PREFIX}assertion"] = json.dumps(assertion(agreement, table), sort_keys=True)
    return out


def uses_of(properties: Mapping[str, str]) -> dict[str, str]:
    """Read the four uses back from table properties (what a partner's code does)."""
    return {
        use: properties[f"{PROPERTY_PREFIX}{use}"] for use in USES if f"{PROPERTY_PREFIX}{use}" in properties
    }


# What a partner's attestation accepts (every one, or it is refused): the card's prohibited uses.
PROHIBITED_USE_CODES: Final = (
    "no_reidentification",
    "honour_forget_entries",
    "licensed_purposes_only",
    "no_redistribution",
)
