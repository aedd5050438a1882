"""Settings from the environment: every piece of state lives under DATALEASE_HOME."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where state lives and which adapters to use.

    DATALEASE_HOME (default ./.datalease) holds the SQLite store and the lake, so two homes never
    interfere. DATALEASE_DATABASE_URL switches the store to PostgreSQL.
    """

    model_config = SettingsConfigDict(env_prefix="DATALEASE_", extra="ignore")

    home: Path = Field(default=Path(".datalease"))
    database_url: str | None = None
    engine: str = "duckdb"
    # DuckDB memory_limit for release builds (it spills beyond); keeps a build under 2 GiB.
    engine_memory: str = "768MB"
    # The Spark engine (`--engine spark`): local[*] runs it in the build's process tree, spark://host:7077
    # on a standalone cluster; the memory is the driver's (and each executor's on a cluster).
    spark_master: str = "local[*]"
    spark_memory: str = "2g"
    # Connections each process keeps open to the store (SQLAlchemy's pool_size; up to 10 more are
    # opened and closed as needed): at least the requests one server answers at once, or each
    # request beyond it pays for a new connection (docs/operations.md sizes it for PostgreSQL).
    db_pool_size: int = Field(default=20, ge=1)
    master_key: str | None = Field(default=None, repr=False)  # hex; else a key file under the home
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))
    # The server: where `datalease serve` listens and the endpoint written into partner profiles.
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # e.g. https://share.example.com when behind a proxy
    # Signed file URLs must outlive a whole download: the Python client never asks for fresh ones.
    file_url_lifetime_s: int = 3600
    api_token: str | None = Field(default=None, repr=False)  # else generated into <home>/keys/api.token
    # The revocation worker inside `datalease serve`: its pause after a batch that delivered nothing
    # (after one that delivered, the next starts at once).
    revocation_window_s: float = Field(default=0.1, gt=0)
    revocation_worker: bool = True
    # Agreements a revocation batch delivers to at once (each under its own share's lock).
    revocation_parallel: int = Field(default=2, ge=1, le=16)
    # Bulk withdrawals (orders, terminations): rows deleted per commit, at most one million.
    bulk_chunk_rows: int = Field(default=1_000_000, ge=1, le=1_000_000)
    # … and fewer, so that a chunk holds the share's lock about this long (0: always chunk_rows).
    bulk_chunk_seconds: float = Field(default=0.5, ge=0)
    # A login page listing users, for demos only: anyone could sign in as anyone.
    demo_login: bool = False
    # Request bodies (bytes) per endpoint; a larger one is refused with 413 before it is buffered.
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)  # sharing /query, partner acks, the rest
    max_events_body_bytes: int = Field(default=8 * 1024 * 1024, ge=0)  # POST /api/v1/platform/events
    max_form_body_bytes: int = Field(default=64 * 1024, ge=0)  # the pages' forms
    max_events_per_call: int = Field(default=10_000, ge=1)  # POST /api/v1/platform/events
    # The Ed25519 key signing consent receipts (PEM, PKCS#8); else a 0600 file under <home>/keys/.
    receipt_key: str | None = Field(default=None, repr=False)

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def lake_dir(self) -> Path:
        return self.resolved_home / "lake"

    @property
    def endpoint_base(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home / 'datalease.db'}"


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
