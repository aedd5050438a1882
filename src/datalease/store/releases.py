"""The release ledger: a row per committed release, pinning each table's Delta version.

A release exists only once its row is committed, and nothing is served that has no row; Delta
commits made by a build that died before this point are invisible until a later build pins them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.releases.model import Release, ReleaseTable
from datalease.store.licensing import AgreementRow
from datalease.store.models import Base, UTCDateTime


class ReleaseRow(Base):
    __tablename__ = "releases"

    release_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(String(63), ForeignKey("agreements.agreement_id"))
    built_at: Mapped[datetime] = mapped_column(UTCDateTime())
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    policy_revision_id: Mapped[int] = mapped_column(Integer)
    policy_version: Mapped[str | None] = mapped_column(String(100))
    agreement_sha256: Mapped[str] = mapped_column(String(64))
    consent_watermark: Mapped[int] = mapped_column(BigInteger)
    source_versions: Mapped[str] = mapped_column(Text)
    engine: Mapped[str] = mapped_column(String(20))
    full_build: Mapped[bool] = mapped_column(Boolean)
    duration_ms: Mapped[int] = mapped_column(Integer)
    excluded: Mapped[str] = mapped_column(Text)
    excluded_sample_every: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), server_default="build")  # build | revocation
    consent_head_hash: Mapped[str] = mapped_column(String(64), server_default="")  # 0010 (issue 15)

    __table_args__ = (Index("ix_releases_agreement", "agreement_id", "release_id"),)


class ReleaseTableRow(Base):
    __tablename__ = "release_tables"

    release_id: Mapped[int] = mapped_column(Integer, ForeignKey("releases.release_id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    table_version: Mapped[int] = mapped_column(Integer)
    rows_total: Mapped[int] = mapped_column(BigInteger)
    rows_added: Mapped[int] = mapped_column(BigInteger)
    rows_removed: Mapped[int] = mapped_column(BigInteger)
    files_added: Mapped[int] = mapped_column(Integer)
    files_removed: Mapped[int] = mapped_column(Integer)


# Built once: sharing asks it on every request, and building it cost more than running it.
CATALOGUE_PARTS: Final = (
    select(func.max(ReleaseRow.release_id)).scalar_subquery(),
    select(func.max(AgreementRow.status_changed_at)).scalar_subquery(),
    select(func.count()).select_from(AgreementRow).scalar_subquery(),
)
_CATALOGUE_VERSION: Final = select(*CATALOGUE_PARTS)


def catalogue_version(session: Session) -> tuple[object, ...]:
    """What the sharing catalogue depends on, in one cheap query: the latest release, the latest
    agreement status change and the number of agreements. Equal values mean an unchanged catalogue."""
    return tuple(session.execute(_CATALOGUE_VERSION).one())


def record_release(session: Session, release: Release) -> int:
    """Insert the ledger row and its tables; returns the new release id. The caller commits."""
    row = ReleaseRow(
        agreement_id=release.agreement_id,
        built_at=release.built_at,
        as_of=release.as_of,
        policy_revision_id=release.policy_revision_id,
        policy_version=release.policy_version,
        agreement_sha256=release.agreement_sha256,
        consent_watermark=release.consent_watermark,
        source_versions=json.dumps(release.source_versions, sort_keys=True),
        engine=release.engine,
        full_build=release.full_build,
        duration_ms=release.duration_ms,
        excluded=json.dumps(release.excluded, sort_keys=True),
        excluded_sample_every=release.excluded_sample_every,
        kind=release.kind,
        consent_head_hash=release.consent_head_hash,
    )
    session.add(row)
    session.flush()
    for table in release.tables:
        session.add(ReleaseTableRow(release_id=row.release_id, **table.__dict__))
    return row.release_id


def pin_table(session: Session, release_id: int, table: ReleaseTable) -> None:
    """Add a table to a release recorded in this (uncommitted) transaction: one whose Delta row needs
    the release id (releases/ledger_head.py)."""
    session.add(ReleaseTableRow(release_id=release_id, **table.__dict__))


def _to_release(row: ReleaseRow, tables: list[ReleaseTableRow]) -> Release:
    return Release(
        release_id=row.release_id,
        agreement_id=row.agreement_id,
        built_at=row.built_at,
        as_of=row.as_of,
        policy_revision_id=row.policy_revision_id,
        policy_version=row.policy_version,
        agreement_sha256=row.agreement_sha256,
        consent_watermark=row.consent_watermark,
        source_versions=json.loads(row.source_versions),
        engine=row.engine,
        full_build=row.full_build,
        duration_ms=row.duration_ms,
        excluded=json.loads(row.excluded),
        excluded_sample_every=row.excluded_sample_every,
        tables=tuple(
            ReleaseTable(
                t.category,
                t.table_version,
                t.rows_total,
                t.rows_added,
                t.rows_removed,
                t.files_added,
                t.files_removed,
            )
            for t in sorted(tables, key=lambda t: t.category)
        ),
        kind=row.kind,
        consent_head_hash=row.consent_head_hash or "",
    )


def list_releases(session: Session, agreement_id: str | None = None) -> list[Release]:
    query = select(ReleaseRow).order_by(ReleaseRow.release_id)
    if agreement_id is not None:
        query = query.where(ReleaseRow.agreement_id == agreement_id)
    rows = list(session.scalars(query))
    if not rows:
        return []
    tables = list(
        session.scalars(
            select(ReleaseTableRow).where(ReleaseTableRow.release_id.in_([r.release_id for r in rows]))
        )
    )
    by_release: dict[int, list[ReleaseTableRow]] = {}
    for t in tables:  # grouped once (a per-release filter was quadratic in the number of releases)
        by_release.setdefault(t.release_id, []).append(t)
    return [_to_release(r, by_release.get(r.release_id, [])) for r in rows]


def get_release(session: Session, release_id: int) -> Release | None:
    row = session.get(ReleaseRow, release_id)
    if row is None:
        return None
    tables = list(session.scalars(select(ReleaseTableRow).where(ReleaseTableRow.release_id == release_id)))
    return _to_release(row, tables)


def latest_release(session: Session, agreement_id: str) -> Release | None:
    row = session.scalars(
        select(ReleaseRow)
        .where(ReleaseRow.agreement_id == agreement_id)
        .order_by(ReleaseRow.release_id.desc())
        .limit(1)
    ).first()
    return get_release(session, row.release_id) if row else None
