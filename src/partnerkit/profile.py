"""A Delta Sharing profile file and the JSON API it also opens (forget list, acknowledgements)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from partnerkit.errors import PartnerError

SHARING_SUFFIX = "/delta-sharing"
HTTP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Profile:
    path: Path
    endpoint: str  # the Delta Sharing endpoint, e.g. http://host:8000/delta-sharing
    bearer: str

    @property
    def api_base(self) -> str:
        """The JSON API's base: the profile endpoint minus `/delta-sharing`, plus `/api/v1`."""
        base = self.endpoint.rstrip("/")
        base = base.removesuffix(SHARING_SUFFIX)
        return base + "/api/v1"

    def table_url(self, table: str) -> str:
        return f"{self.path}#{table}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer}"}


def load_profile(path: Path) -> Profile:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PartnerError(f"{path}: not a readable Delta Sharing profile ({exc})") from exc
    if not isinstance(document, dict):
        raise PartnerError(f"{path}: expected a JSON object")
    endpoint, bearer = document.get("endpoint"), document.get("bearerToken")
    if not isinstance(endpoint, str) or not isinstance(bearer, str):
        raise PartnerError(f"{path}: `endpoint` and `bearerToken` are required")
    return Profile(path.resolve(), endpoint, bearer)


def _check(response: requests.Response, what: str) -> Any:
    if response.status_code != 200:
        raise PartnerError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


def forget_entries(profile: Profile, *, pending: bool = True) -> list[dict[str, Any]]:
    """`GET /api/v1/partner/forget[?pending=true]`: the partner's forget entries."""
    response = requests.get(
        profile.api_base + "/partner/forget",
        params={"pending": "true"} if pending else None,
        headers=profile.headers,
        timeout=HTTP_TIMEOUT,
    )
    body = _check(response, "forget list")
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise PartnerError(f"forget list: unexpected answer {str(body)[:300]}")
    return [i for i in items if isinstance(i, dict)]


def acknowledge(profile: Profile, ids: list[str], certificate: str) -> dict[str, Any]:
    """`POST /api/v1/partner/forget/ack` with the certificate text."""
    response = requests.post(
        profile.api_base + "/partner/forget/ack",
        json={"ids": ids, "certificate": certificate},
        headers=profile.headers,
        timeout=HTTP_TIMEOUT,
    )
    body = _check(response, "acknowledgement")
    return body if isinstance(body, dict) else {"answer": body}
