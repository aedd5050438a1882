""" "Where my data went": per agreement, what of one user's data is shared now, since when, what was
withdrawn and whether the partner confirmed forgetting it — recomputed from the HMAC keys (the
platform can always recompute a user's keys for an agreement), never from a second copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.compute as pc

from datalease.licensing.model import AgreementRecord
from datalease.platform.lake import register_delta
from datalease.releases.keys import agreement_secret, post_key, user_key
from datalease.releases.support_tables import is_licensed_data
from datalease.reporting.withdrawals import why_withdrawn
from datalease.store.forget import forget_entries
from datalease.store.licensing import list_agreements
from datalease.store.releases import list_releases
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


@dataclass(frozen=True)
class ForgetLine:
    id: str
    scope: str
    reason_code: str
    rows: int
    requested_at: datetime
    delivered_at: datetime
    deadline: datetime
    state: str
    acknowledged_at: datetime | None
    certificate: str | None


@dataclass(frozen=True)
class AgreementReport:
    agreement_id: str
    partner: str
    status: str
    user_key: str  # the user's pseudonym in this agreement's share
    rows_shared: dict[str, int]  # category → the user's rows in the latest release
    first_release: int | None  # the first release that included any of the user's rows
    last_release: int | None
    first_release_at: datetime | None
    last_release_at: datetime | None
    rows_revoked: int
    forget: list[ForgetLine] = field(default_factory=list)
    why: list[str] = field(default_factory=list)  # bulk withdrawals in words (reporting/withdrawals.py)


def user_report(ws: Workspace, user_id: int) -> list[AgreementReport]:
    now = utc_now()
    posts = ws.lake.read("posts")
    own_posts = posts.filter(pc.equal(posts["author_id"], user_id))["post_id"].to_pylist()
    reports: list[AgreementReport] = []
    users = ws.lake.read("users")
    mine = users.filter(pc.equal(users["user_id"], user_id))["country"].to_pylist()
    country = mine[0] if mine else None
    with ws.session() as session:
        records = list_agreements(session)
        releases = {r.agreement_id: list_releases(session, r.agreement_id) for r in records}
    con = duckdb.connect()
    try:
        for record in records:
            history = releases[record.agreement_id]
            if not history:
                continue
            secret = agreement_secret(ws.master_key, record.agreement_id)
            key = user_key(secret, user_id)
            counts: dict[tuple[str, int], int] = {}
            included: list[tuple[int, datetime]] = []
            for release in history:
                total = 0
                for table in release.tables:
                    if not is_licensed_data(table.category):
                        continue
                    slot = (table.category, table.table_version)
                    if slot not in counts:
                        counts[slot] = _rows_of(
                            con, ws.share_dir(record.agreement_id) / table.category, table.table_version, key
                        )
                    total += counts[slot]
                if total:
                    included.append((release.release_id, release.built_at))
            latest = history[-1]
            shared = {
                t.category: counts.get((t.category, t.table_version), 0)
                for t in latest.tables
                if is_licensed_data(t.category)
            }
            subjects = [key, *(post_key(secret, p) for p in own_posts)]
            with ws.session() as session:
                entries = forget_entries(session, agreement_id=record.agreement_id, subject_keys=subjects)
                engagement = [
                    e
                    for e in forget_entries(session, agreement_id=record.agreement_id)
                    if e.subject_key.startswith(key + ":")
                ]
            lines = [
                ForgetLine(
                    e.forget_id,
                    e.scope,
                    e.reason_code,
                    e.rows,
                    e.requested_at,
                    e.delivered_at,
                    e.deadline,
                    e.state(now),
                    e.acked_at,
                    e.certificate,
                )
                for e in sorted([*entries, *engagement], key=lambda e: e.delivered_at)
            ]
            reports.append(
                AgreementReport(
                    agreement_id=record.agreement_id,
                    partner=record.partner,
                    status=record.status,
                    user_key=key,
                    rows_shared=shared,
                    first_release=included[0][0] if included else None,
                    last_release=included[-1][0] if included else None,
                    first_release_at=included[0][1] if included else None,
                    last_release_at=included[-1][1] if included else None,
                    rows_revoked=sum(line.rows for line in lines),
                    forget=lines,
                    why=_why(ws, record, country, bool(included)),
                )
            )
    finally:
        con.close()
    return reports


def _rows_of(con: duckdb.DuckDBPyConnection, path: Path, version: int, key: str) -> int:
    register_delta(con, "shared", path, version=version, partitioned=True)
    (count,) = con.execute("SELECT count(*) FROM shared WHERE user_key = ?", [key]).fetchall()[0]
    return int(count)


def _why(ws: Workspace, record: AgreementRecord, country: str | None, had_rows: bool) -> list[str]:
    with ws.session() as session:
        return why_withdrawn(session, record, country, had_rows)
