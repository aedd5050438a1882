"""Partners and agreements: what each partner may receive (scope and fields), for how long, at what
price and with which deletion SLA. Pure domain (model, load, validate, pricing); storage is in
`datalease.store.licensing`. The agreement format is documented in docs/agreements.md.
"""

from datalease.licensing.load import load_agreement
from datalease.licensing.model import (
    FIELD_CATALOGUE,
    KEY_FIELDS,
    PRICING_MODELS,
    STATUSES,
    Agreement,
    AgreementRecord,
    LicensingError,
    Partner,
    Pricing,
)
from datalease.licensing.pricing import charge, charge_agreement
from datalease.licensing.validate import check_agreement, validate_agreement

__all__ = [
    "FIELD_CATALOGUE",
    "KEY_FIELDS",
    "PRICING_MODELS",
    "STATUSES",
    "Agreement",
    "AgreementRecord",
    "LicensingError",
    "Partner",
    "Pricing",
    "charge",
    "charge_agreement",
    "check_agreement",
    "load_agreement",
    "validate_agreement",
]
