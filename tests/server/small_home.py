"""A small prepared home for the HTTP tests: 40 generated users, the example policy, one partner with
a token, one agreement (lumen-genai-2025) with a release, and the platform API token.

Built the way tests/releases/release_world.py builds its world, but small, so that the in-process
tests (TestClient, schemathesis) and the real-server tests start quickly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Final

from datalease.config import Settings
from datalease.licensing.registry import create_agreement
from datalease.licensing.tokens import new_bearer
from datalease.platform.curate import curate
from datalease.platform.generate import generate_platform
from datalease.platform.ingest import ingest_file
from datalease.services.api_token import api_token
from datalease.services.releases import build_release
from datalease.store.licensing import add_partner
from datalease.store.policy_revisions import save_policy_revision
from datalease.store.sharing import save_token
from datalease.workspace import Workspace

USERS: Final = 40
SEED: Final = 5
GENERATED_AT: Final = datetime(2026, 5, 1, tzinfo=UTC)
RELEASED_AT: Final = datetime(2026, 5, 2, tzinfo=UTC)
AGREEMENT: Final = "lumen-genai-2025"
PARTNER: Final = "lumen-labs"
SCHEMA: Final = "platform"
TABLE: Final = "posts"


@dataclass(frozen=True)
class SmallHome:
    home: Path
    partner_bearer: str  # dls_… of PARTNER
    api_token: str  # the platform API token (<home>/keys/api.token)
    user_id: int  # a user in the lake

    @property
    def partner_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.partner_bearer}"}

    @property
    def platform_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


def settings(home: Path, **extra: object) -> Settings:
    """Settings of `home` alone, whatever the environment says."""
    return Settings(
        home=home,
        workers=1,
        database_url=None,
        master_key=None,
        api_token=None,
        **extra,  # type: ignore[arg-type]
    )


def _example(*parts: str) -> str:
    return files("datalease.examples").joinpath(*parts).read_text(encoding="utf-8")


def build_small_home(home: Path) -> SmallHome:
    ws = Workspace(settings(home))
    ws.init()
    inputs = generate_platform(home.parent / f"{home.name}-input", users=USERS, seed=SEED, now=GENERATED_AT)
    for table in ("users", "posts", "likes", "reposts", "bookmarks"):
        assert ingest_file(ws.lake, table, inputs[table]).rejected == 0
    curate(ws.lake, workers=1)
    policy_text = _example("x-2024.yaml")
    bearer = new_bearer()
    with ws.session() as session, session.begin():
        save_policy_revision(
            session, "x-platform", policy_text, hashlib.sha256(policy_text.encode()).hexdigest(), "tests"
        )
    policy = ws.require_policy()
    with ws.session() as session, session.begin():
        add_partner(session, PARTNER, "Lumen Labs")
        create_agreement(
            session, _example("agreements", "lumen-genai.yaml"), "lumen-genai.yaml", policy=policy
        )
        save_token(
            session,
            PARTNER,
            bearer,
            created_at=GENERATED_AT,
            expires_at=datetime(2100, 1, 1, tzinfo=UTC),
        )
    build_release(ws, AGREEMENT, at=RELEASED_AT)
    token = api_token(ws)
    user_id = int(ws.lake.read("users").column("user_id").to_pylist()[0])
    ws.engine.dispose()
    (home / "small-home.json").write_text(json.dumps({"bearer": bearer.text, "user_id": user_id}))
    return SmallHome(home, bearer.text, token, user_id)
