"""Model lineage, the partner's side (issue 18): after training, declare which model version was
trained on which table version (`POST /api/v1/partner/lineage`); after unlearning, answer per model
(`POST /api/v1/partner/forget/ack-models`). The declared ids are kept in DIR/lineage.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from partnerkit.errors import PartnerError
from partnerkit.profile import HTTP_TIMEOUT, Profile

LINEAGE_FILE = "lineage.json"


def model_id(table: str, version: int) -> str:
    """The id a model version is declared under: SHARE.SCHEMA.TABLE/vN."""
    return f"{table}/v{version}"


def declared(directory: Path) -> list[str]:
    path = directory / LINEAGE_FILE
    if not path.exists():
        return []
    return [str(m) for m in json.loads(path.read_text()).get("models", [])]


def _post(profile: Profile, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    response = requests.post(
        profile.api_base + path, json=body, headers=profile.headers, timeout=HTTP_TIMEOUT
    )
    if response.status_code != 200:
        raise PartnerError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    answer = response.json()
    return answer if isinstance(answer, dict) else {"answer": answer}


def declare(
    directory: Path, profile: Profile, table: str, table_version: int, model_version: int
) -> dict[str, Any]:
    """Declare model `table/vN` as trained on `table` at `table_version`; remember it locally."""
    share, _, name = table.split(".")
    model = model_id(table, model_version)
    answer = _post(
        profile,
        "/partner/lineage",
        {
            "declarations": [
                {"model_id": model, "share": share, "table": name, "table_version": table_version}
            ]
        },
        "lineage declaration",
    )
    models = sorted({*declared(directory), model})
    (directory / LINEAGE_FILE).write_text(json.dumps({"models": models}, indent=2))
    return answer


def acknowledge_models(
    profile: Profile, ids: list[str], models: list[str], certificate: str
) -> dict[str, Any]:
    """Every declared model answers for the entries: retrained without them, with the certificate."""
    body = {
        "ids": ids,
        "models": [{"model_id": m, "outcome": "retrained", "certificate": certificate} for m in models],
    }
    return _post(profile, "/partner/forget/ack-models", body, "per-model acknowledgement")
