"""The store: SQLAlchemy models and Alembic migrations; SQLite by default, PostgreSQL by URL.

The only package that speaks SQL to the application database.
"""

from __future__ import annotations

# Every mapped table belongs to Base.metadata once the store is imported (Alembic autogenerate, FKs).
from datalease.store import billing_rows as billing_rows
from datalease.store import bulk as bulk
from datalease.store import licensing as licensing
from datalease.store import orders as orders
from datalease.store import platform_api as platform_api
from datalease.store import provenance as provenance
from datalease.store import releases as releases
from datalease.store import revocation as revocation
from datalease.store import sharing as sharing
from datalease.store import usage_log as usage_log
from datalease.store import web_sessions as web_sessions
from datalease.store.db import (
    StoreError,
    current_revision,
    head_revision,
    make_engine,
    session_factory,
    session_scope,
    upgrade,
)
from datalease.store.models import (
    Base,
    ConsentChainHead,
    ConsentCurrentRow,
    ConsentEventRow,
    Meta,
    PolicyRevision,
    UTCDateTime,
)
from datalease.store.policy_revisions import (
    get_policy_revision,
    latest_policy_revision,
    list_policy_revisions,
    save_policy_revision,
)

__all__ = [
    "Base",
    "ConsentChainHead",
    "ConsentCurrentRow",
    "ConsentEventRow",
    "Meta",
    "PolicyRevision",
    "StoreError",
    "UTCDateTime",
    "current_revision",
    "get_policy_revision",
    "head_revision",
    "latest_policy_revision",
    "list_policy_revisions",
    "make_engine",
    "save_policy_revision",
    "session_factory",
    "session_scope",
    "upgrade",
]
from datalease.store import notice_deliveries as notice_deliveries
