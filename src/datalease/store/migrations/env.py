"""Alembic environment: runs on a connection handed over by `datalease.store.db.upgrade`, or on
the database named by `sqlalchemy.url` / datalease settings when the alembic CLI is used."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from datalease.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    handed: Connection | None = config.attributes.get("connection")
    if handed is not None:
        run_on(handed)
        return
    # alembic CLI: configure logging from the ini, load every model module (so autogenerate sees
    # all tables) and open the configured database.
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    import importlib
    import pkgutil

    import datalease.store

    for module in pkgutil.iter_modules(datalease.store.__path__):
        if module.name != "migrations":
            importlib.import_module(f"datalease.store.{module.name}")
    from datalease.config import load_settings
    from datalease.store.db import make_engine

    url = config.get_main_option("sqlalchemy.url") or load_settings().db_url
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
