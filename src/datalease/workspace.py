"""One place that wires the adapters for a DATALEASE_HOME: store, lake, ledger and the active policy.

The CLI and the web app both open a Workspace; nothing else constructs adapters.
"""

from __future__ import annotations

import os
import secrets
from contextlib import AbstractContextManager
from datetime import datetime
from functools import cached_property
from pathlib import Path

import pyarrow.compute as pc
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from datalease.config import Settings
from datalease.consent.ledger import ConsentLedger
from datalease.errors import UserError
from datalease.platform.lake import Lake
from datalease.platform.schemas import MAX_ID
from datalease.policy.load import load_revision
from datalease.policy.model import Policy, UserFacts
from datalease.policy.orders import with_orders
from datalease.store.db import SQLITE_BEGIN_OPTION, make_engine, session_factory, upgrade
from datalease.store.locks import named_lock
from datalease.store.orders import list_orders
from datalease.store.policy_revisions import latest_policy_revision


class Workspace:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    @cached_property
    def engine(self) -> Engine:
        """The store, migrated to the latest schema (idempotent), so every command works in a new home."""
        self.settings.resolved_home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(self.settings.db_url, pool_size=self.settings.db_pool_size)
        upgrade(engine)
        return engine

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.settings.lake_dir)

    @cached_property
    def master_key(self) -> bytes:
        """The platform's HMAC master key (per-agreement secrets derive from it)."""
        try:
            return load_or_create_master_key(
                self.settings.resolved_home / "keys" / "master.key", self.settings.master_key
            )
        except ValueError as exc:
            raise UserError(str(exc)) from exc

    @cached_property
    def ledger(self) -> ConsentLedger:
        return ConsentLedger(self.engine)

    def share_dir(self, agreement_id: str) -> Path:
        """Where an agreement's share lives: one Delta table per category, its card, its lock."""
        return self.settings.resolved_home / "shares" / agreement_id

    def table_dir(self, agreement_id: str, table: str) -> Path:
        return self.share_dir(agreement_id) / table

    def share_lock(self, agreement_id: str) -> AbstractContextManager[None]:
        """One writer at a time of the agreement's share (a build's commit, a revocation batch,
        optimize): an advisory lock on PostgreSQL, a flock on `<share>/.lock` on SQLite."""
        return named_lock(self.engine, f"share:{agreement_id}", self.share_dir(agreement_id) / ".lock")

    def lake_lock(self) -> AbstractContextManager[None]:
        """One writer at a time of the lake's tables (platform events applied by a batch)."""
        return named_lock(self.engine, "lake", self.settings.lake_dir / ".lock")

    def bulk_lock(self) -> AbstractContextManager[None]:
        """One deliverer of bulk withdrawals at a time, whichever process runs it (servers, workers)."""
        return named_lock(self.engine, "bulk", self.settings.resolved_home / "bulk.lock")

    def sharing_cache_dir(self, agreement_id: str, table: str) -> Path:
        """The sharing server's materialised change files of one shared table."""
        return self.settings.resolved_home / "sharing" / agreement_id / table

    def init(self) -> None:
        """Create the home, the lake folder and the store schema (idempotent)."""
        self.settings.lake_dir.mkdir(parents=True, exist_ok=True)
        _ = self.engine

    def session(self) -> Session:
        """A session for reading (and for writes that do not read first)."""
        return self._sessions()

    def write_session(self) -> Session:
        """A session for a read-then-write transaction: on SQLite it takes the write lock at BEGIN
        (BEGIN IMMEDIATE), so it waits its turn instead of failing with "database is locked" when
        another writer commits between its read and its write. PostgreSQL is unaffected."""
        return self._write_sessions()

    # Made once: a new sessionmaker per session cost ~1.5 ms of every request (issue 16).
    @cached_property
    def _sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def _write_sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"}))

    def active_policy(self) -> Policy | None:
        with self.session() as session:
            revision = latest_policy_revision(session)
            orders = list_orders(session)  # regulator orders apply with every policy (issue 14)
        if revision is None:
            return None
        return with_orders(load_revision(revision.id, revision.source_text), orders)

    def require_policy(self) -> Policy:
        policy = self.active_policy()
        if policy is None:
            raise UserError("no policy has been applied yet: run `datalease policy apply FILE` first")
        return policy

    def user_facts(self, user: str) -> UserFacts:
        """Look a platform user up by numeric id or @handle."""
        shown = repr(user) if len(user) <= 60 else repr(user[:60]) + "…"
        numeric = user.isascii() and user.isdigit()
        if numeric and (len(user) > len(str(MAX_ID)) or int(user) > MAX_ID):
            raise UserError(f"user {shown}: expected a user_id from 0 to {MAX_ID} or an @handle")
        users = self.lake.read("users")
        if numeric:
            mask = pc.equal(users["user_id"], int(user))
        else:
            mask = pc.equal(users["handle"], user.lstrip("@"))
        found = users.filter(mask).to_pylist()
        if not found:
            raise UserError(
                f"user {shown}: no such user in the platform lake (give a numeric user_id or @handle)"
            )
        row = found[0]
        return UserFacts(row["user_id"], row["country"], row["birth_date"], row["account_state"])

    def consent_at(self, user_id: int, at: datetime | None) -> dict[str, bool]:
        return {key: state.value for key, state in self.ledger.state_at(user_id, at).items()}


def load_or_create_master_key(path: Path, env_value: str | None = None) -> bytes:
    """The platform's master key: from DATALEASE_MASTER_KEY (hex) or a 0600 file created once."""
    if env_value:
        try:
            key = bytes.fromhex(env_value)
        except ValueError as exc:
            raise ValueError("DATALEASE_MASTER_KEY: expected at least 32 bytes as hex") from exc
        if len(key) < 32:
            raise ValueError("DATALEASE_MASTER_KEY: expected at least 32 bytes as hex")
        return key
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key
