"""The provenance tables (migration 0013) on real SQLite and PostgreSQL: the models describe exactly
what the migration creates, and the outcome check refuses anything but retrained / certificate."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, text
from sqlalchemy.exc import IntegrityError

from datalease.store import Base

TABLES = {"attestations", "model_lineage", "forget_model_acks"}


def test_models_match_the_migration(engine: Engine) -> None:
    mine = MetaData()
    for name in sorted(Base.metadata.tables):  # the tables referenced too; compared: only ours
        Base.metadata.tables[name].to_metadata(mine)

    def only_mine(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = getattr(obj, "table", None)
        owner = name if type_ == "table" else getattr(table, "name", None)
        return owner in TABLES

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False, "include_object": only_mine})
        assert compare_metadata(context, mine) == []


def test_an_unknown_outcome_is_refused(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO forget_model_acks (forget_id, model_id, outcome, acked_at) "
                "VALUES ('f', 'm', 'ignored', '2026-01-01T00:00:00.000000Z')"
            )
        )
