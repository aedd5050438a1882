"""A month of licensing history on the release world, and an oracle for record-days.

June 2026: every agreement is released at T0 (06-01 12:00); one person (the heaviest US poster of
sentimetrics) opts out at OPT_OUT (06-10 12:00), delivered five seconds later; sentimetrics is built
again on 06-20 (nothing new: no records delivered) and on 07-05 (outside June); acme's partner makes
QUERIES metered queries in June and some in July.

The oracle reads each pinned version with deltalake (not DuckDB), counts each person's rows by their
recomputed key and multiplies by the time the version was the snapshot, minus the opt-out stretch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deltalake import DeltaTable
from release_world import ACME, LUMEN, SENTIMETRICS, T0

from datalease.billing.period import Period
from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases.keys import agreement_secret, user_key
from datalease.releases.model import KIND_BUILD, Release
from datalease.releases.support_tables import is_licensed_data
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release
from datalease.sharing.model import Usage
from datalease.store.releases import list_releases
from datalease.store.sharing import record_usage
from datalease.workspace import Workspace

JUNE = Period(2026, 6)
OPT_OUT = datetime(2026, 6, 10, 12, tzinfo=UTC)
DELIVERED = OPT_OUT + timedelta(seconds=5)
REBUILD = datetime(2026, 6, 20, tzinfo=UTC)
JULY_BUILD = datetime(2026, 7, 5, tzinfo=UTC)
QUERIES = 17
MICROS = 1_000_000


@dataclass
class History:
    ws: Workspace
    home: Path
    opted_out: int  # the user who opted out on OPT_OUT


def make_history(ws: Workspace, home: Path) -> History:
    for agreement in (LUMEN, SENTIMETRICS, ACME):
        build_release(ws, agreement, at=T0)
    opted_out = heaviest(ws, SENTIMETRICS)
    ws.ledger.record(opted_out, MASTER_KEY, False, at=OPT_OUT)
    process_pending(ws, now=DELIVERED)
    build_release(ws, SENTIMETRICS, at=REBUILD)
    build_release(ws, SENTIMETRICS, at=JULY_BUILD)
    with ws.write_session() as session, session.begin():
        for i in range(QUERIES):
            record_usage(
                session, Usage("acme", ACME, "bookmarks", "query", 1, 3, 100), T0 + timedelta(hours=i)
            )
        record_usage(session, Usage("acme", ACME, "bookmarks", "query", 1, 3, 100), JULY_BUILD)
        record_usage(session, Usage("acme", ACME, "bookmarks", "metadata"), T0)
    return History(ws, home, opted_out)


def releases_of(ws: Workspace, agreement_id: str) -> list[Release]:
    with ws.session() as session:
        return list_releases(session, agreement_id)


def rows_by_key(ws: Workspace, agreement_id: str, category: str, version: int) -> Counter[str]:
    table = DeltaTable(str(ws.share_dir(agreement_id) / category), version=version)
    return Counter(table.to_pyarrow_table(columns=["user_key"]).column("user_key").to_pylist())


def heaviest(ws: Workspace, agreement_id: str) -> int:
    (release,) = releases_of(ws, agreement_id)
    counts = rows_by_key(ws, agreement_id, "posts", release.table("posts").table_version)  # type: ignore[union-attr]
    secret = agreement_secret(ws.master_key, agreement_id)
    users = {user_key(secret, u): u for u in ws.lake.read("users").column("user_id").to_pylist()}
    return users[counts.most_common(1)[0][0]]


def _instant(release: Release) -> datetime:
    return release.as_of if release.kind == KIND_BUILD else release.built_at


def oracle_row_micros(
    ws: Workspace, agreement_id: str, period: Period, gaps: dict[int, tuple[datetime, datetime]]
) -> dict[int, int]:
    """Per user id: Σ rows × microseconds held in the period, minus their opt-out stretch.

    (A revocation release's instant is when it was delivered, by the wall clock, after June; the
    builds are back-dated with `at`: the next release by id ends a holding, so the revocation holds
    until the 06-20 build.)"""
    history = sorted(releases_of(ws, agreement_id), key=lambda r: r.release_id)
    instants = [_instant(r) for r in history]
    for i in reversed(range(len(instants) - 1)):  # a release is superseded by the next one by id
        instants[i] = min(instants[i], instants[i + 1])
    secret = agreement_secret(ws.master_key, agreement_id)
    users = {user_key(secret, u): u for u in ws.lake.read("users").column("user_id").to_pylist()}
    total: Counter[int] = Counter()
    for i, release in enumerate(history):
        start = max(instants[i], period.start)
        end = min(instants[i + 1] if i + 1 < len(history) else period.end, period.end)
        if start >= end:
            continue
        for table in release.tables:
            if not is_licensed_data(table.category):
                continue
            for key, n in rows_by_key(ws, agreement_id, table.category, table.table_version).items():
                user = users[key]
                held = end - start
                if user in gaps:
                    g0, g1 = gaps[user]
                    held -= max(timedelta(0), min(end, g1) - max(start, g0))
                total[user] += n * (held // timedelta(microseconds=1))
    return {u: m for u, m in total.items() if m > 0}
