"""Release test worlds: a generated platform, curated once, licensed to three partners.

Helpers only; the fixtures (`base_home`, `world`) are in conftest.py.

`base_home` builds the world once per pytest(-xdist) worker: 200 generated users, their posts and
engagement ingested and curated, the example policy x-2024 applied, initial consent events (every
kind of setting, all taking effect before T0), the two example partners and agreements plus a third
agreement (acme) that licenses bookmarks and profiles, so that every category is released. Tests that
change anything get their own copy of that home (`world`), so they can run in parallel.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datalease.config import Settings
from datalease.consent.ledger import NewConsentEvent
from datalease.licensing.registry import create_agreement
from datalease.platform.curate import curate
from datalease.platform.generate import generate_platform
from datalease.platform.ingest import ingest_file
from datalease.platform.schemas import PRIMARY_KEYS, SOURCE_SCHEMAS
from datalease.policy.vocabulary import MASTER_KEY, category_key, partner_block_key, purpose_key
from datalease.store.licensing import add_partner
from datalease.store.policy_revisions import save_policy_revision
from datalease.workspace import Workspace
from home_database import copy_home_tree, database_url, home_env, prepare_home

USERS = 200
SEED = 11
GENERATED_AT = datetime(2026, 5, 1, tzinfo=UTC)  # the generator's "now": every record is older
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)  # first release; inside every agreement's term

LUMEN = "lumen-genai-2025"
SENTIMETRICS = "sentimetrics-us-2025"
ACME = "acme-insights-2026"
AGREEMENTS = (LUMEN, SENTIMETRICS, ACME)
PARTNERS = {"lumen-labs": "Lumen Labs", "sentimetrics": "Sentimetrics", "acme": "Acme Insights"}

# Bookmarks (opt_in under x-2024) and profiles, for an independent purpose, with a content window
# that ends while the test sequences run (records created from 2026-07-01 on stay out).
ACME_AGREEMENT = """\
agreement: acme-insights-2026
partner: acme
status: active
description: Acme measures what people save and where they are; bookmarks and profiles.
term: {start: 2026-01-01, end: 2026-12-31}
purposes: [third_party_sharing.independent]
categories: [bookmarks, profile]
content_window: {from: 2023-01-01, until: 2026-07-01}
fields:
  bookmarks: [created_at]
  profile: [country, region, created_at]
pricing: {model: per_query, amount: "0.01", currency: USD}
deletion_sla_hours: 48
"""

SETTING_CHOICES: tuple[tuple[str, bool], ...] = (
    (MASTER_KEY, False),
    (MASTER_KEY, True),
    (category_key("posts"), False),
    (category_key("posts"), True),
    (category_key("likes"), False),
    (category_key("reposts"), False),
    (category_key("bookmarks"), True),
    (category_key("bookmarks"), False),
    (category_key("profile"), False),
    (purpose_key("train_ai_system.generative"), False),
    (purpose_key("train_ai_system.generative"), True),
    (purpose_key("train_ai_system"), False),
    (purpose_key("train_ai_system.non_generative"), False),
    (purpose_key("third_party_sharing"), False),
    (partner_block_key("lumen-labs"), True),
    (partner_block_key("lumen-labs"), False),
    (partner_block_key("sentimetrics"), True),
    (partner_block_key("acme"), True),
)


def example_text(*parts: str) -> str:
    return files("datalease.examples").joinpath(*parts).read_text(encoding="utf-8")


def workspace(home: Path) -> Workspace:
    """A workspace on `home` alone: its own store (SQLite under it, or its PostgreSQL database, see
    tests/home_database.py) and its own key file, whatever the environment says."""
    return Workspace(Settings(home=home, workers=1, database_url=database_url(home), master_key=None))


def apply_policy(ws: Workspace, text: str, applied_by: str = "tests") -> int:
    with ws.session() as session, session.begin():
        return save_policy_revision(
            session, "x-platform", text, hashlib.sha256(text.encode()).hexdigest(), applied_by
        )


def initial_consent(user_ids: list[int], seed: int) -> list[NewConsentEvent]:
    """Every kind of setting, for about a third of the users, all effective before T0."""
    rng = random.Random(seed)
    start = datetime(2024, 10, 1, tzinfo=UTC)
    events = []
    for user_id in user_ids:
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            key, value = rng.choice(SETTING_CHOICES)
            at = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 590))
            events.append(NewConsentEvent(user_id, key, value, at=at))
        if rng.random() < 0.3:  # bookmarks are opt-in under x-2024: give that table some rows
            events.append(NewConsentEvent(user_id, category_key("bookmarks"), True, at=start))
    return events


def build_world(home: Path) -> None:
    prepare_home(home)
    ws = workspace(home)
    ws.init()
    inputs = generate_platform(home.parent / f"{home.name}-input", users=USERS, seed=SEED, now=GENERATED_AT)
    for table in ("users", "posts", "likes", "reposts", "bookmarks"):
        result = ingest_file(ws.lake, table, inputs[table])
        assert result.rejected == 0
    curate(ws.lake, workers=1)
    apply_policy(ws, example_text("x-2024.yaml"))
    policy = ws.require_policy()
    user_ids = ws.lake.read("users").column("user_id").to_pylist()
    ws.ledger.record_many(initial_consent(user_ids, SEED))
    with ws.session() as session, session.begin():
        for name, display in PARTNERS.items():
            add_partner(session, name, display)
        for file in ("lumen-genai.yaml", "sentimetrics-us.yaml"):
            create_agreement(session, example_text("agreements", file), file, policy=policy)
        create_agreement(session, ACME_AGREEMENT, "acme.yaml", policy=policy)
    ws.master_key  # noqa: B018 - create the key file now, so that every copy shares it
    ws.engine.dispose()


def copy_home(source: Path, target: Path) -> Workspace:
    copy_home_tree(source, target)
    return workspace(target)


# --- changing the platform ----------------------------------------------------------------------


@dataclass
class Platform:
    """The lake's source rows, edited in memory and written back through `ingest_file`."""

    ws: Workspace
    rows: dict[str, dict[Any, dict[str, Any]]]
    changed: dict[str, set[Any]]
    scratch: Path

    @classmethod
    def read(cls, ws: Workspace, scratch: Path) -> Platform:
        rows: dict[str, dict[Any, dict[str, Any]]] = {}
        for table in SOURCE_SCHEMAS:
            key = PRIMARY_KEYS[table]
            rows[table] = {tuple(r[k] for k in key): r for r in ws.lake.read(table).to_pylist()}
        return cls(ws, rows, {t: set() for t in SOURCE_SCHEMAS}, scratch)

    def user_ids(self) -> list[int]:
        return sorted(k[0] for k in self.rows["users"])

    def post_ids(self) -> list[int]:
        return sorted(k[0] for k in self.rows["posts"])

    def user(self, user_id: int) -> dict[str, Any]:
        return self.rows["users"][(user_id,)]

    def post(self, post_id: int) -> dict[str, Any]:
        return self.rows["posts"][(post_id,)]

    def update(self, table: str, key: tuple[Any, ...], **values: Any) -> None:
        self.rows[table][key] = {**self.rows[table][key], **values}
        self.changed[table].add(key)

    def insert(self, table: str, key: tuple[Any, ...], row: dict[str, Any]) -> None:
        self.rows[table][key] = row
        self.changed[table].add(key)

    def flush(self) -> None:
        """Write every changed row back (one Parquet file and one ingest per table), then curate."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        for table in ("users", "posts", "likes", "reposts", "bookmarks"):
            keys = sorted(self.changed[table])
            if not keys:
                continue
            batch = pa.Table.from_pylist([self.rows[table][k] for k in keys], schema=SOURCE_SCHEMAS[table])
            path = self.scratch / f"{table}-{len(list(self.scratch.iterdir()))}.parquet"
            pq.write_table(batch, path)
            result = ingest_file(self.ws.lake, table, path)
            assert result.rejected == 0, (
                f"{table}: {result.rejected} rows rejected, see {result.rejects_path}"
            )
            self.changed[table].clear()
        curate(self.ws.lake, workers=1)


def birth_date_turning_18(on: datetime) -> date:
    day = on.date()
    try:
        return day.replace(year=day.year - 18)
    except ValueError:
        return day.replace(year=day.year - 18, day=28)


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("datalease")
    return (
        [str(script)] if script.exists() else [sys.executable, "-c", "from datalease.cli import main; main()"]
    )


def run_cli(home: Path, *args: str, crashpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """`datalease ARGS` in a real process with DATALEASE_HOME=home (and DATALEASE_CRASHPOINT)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATALEASE_")}
    env.update({"DATALEASE_HOME": str(home), "DATALEASE_WORKERS": "1", "COLUMNS": "200", **home_env(home)})
    if crashpoint is not None:
        env["DATALEASE_CRASHPOINT"] = crashpoint
    return subprocess.run(
        [*cli_command(), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
