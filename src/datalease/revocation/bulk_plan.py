"""What a bulk withdrawal removes from one agreement's share: the doomed rows, per table, in chunks.

- an **order** (or a narrower policy): the release plan — with the orders now in force attached —
  over the people the change reaches (the order's countries; everyone for a policy), deletes only,
  against the share's current tables, judged under the release's own policy instant (as single
  revocations are, see withdraw.py);
- a **termination** or an agreement's **term end**: every row of every table.

Only the keys, the bucket and `_op` of each doomed row are kept (bounded memory); they are numbered
in bucket order, so a chunk of ≤ N rows rewrites as few files as possible. The same computation
counts a dry run's impact (people and rows per table) without writing anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from datalease.consent.snapshot import consent_snapshot
from datalease.licensing.model import Agreement
from datalease.platform.lake import Lake
from datalease.policy.model import Policy
from datalease.releases import delta
from datalease.releases.changes import IDS, Changes, source_versions
from datalease.releases.diff import DiffSession
from datalease.releases.keys import agreement_secret
from datalease.releases.model import Release
from datalease.releases.plan import plan_release
from datalease.releases.support_tables import is_licensed_data
from datalease.workspace import Workspace

BULK_THREADS = max(1, (os.cpu_count() or 2) // 2)
EVERYTHING = "everything"  # a termination / term end: every row goes
NARROWED = "narrowed"  # an order / a narrower policy: the rows the plan no longer allows


@dataclass(frozen=True)
class Doomed:
    """One table's doomed rows, registered in the session as `relation` (keys, bucket, `_op`, `_n`);
    `bucket_ends`: the last `_n` of each bucket, ascending (chunks are cut there, see chunks.py)."""

    category: str
    path: Path
    relation: str
    rows: int
    people: int
    columns: tuple[str, ...]
    identity: tuple[str, ...]
    bucket_ends: tuple[int, ...] = ()


def people_in(lake: Lake, countries: Sequence[str]) -> pa.Table:
    """The user ids of the people living in `countries` (the lake's users table as it is now)."""
    if not lake.exists("users"):
        return IDS.empty_table()
    users = lake.read("users").select(["user_id", "country"])
    wanted = users.filter(pc.is_in(users["country"], value_set=pa.array(sorted(countries), pa.string())))
    return pa.table({"user_id": wanted["user_id"].cast(pa.int64())}, schema=IDS)


def open_session(ws: Workspace, at: datetime) -> DiffSession:
    """The session of a delivery or an impact: on half the cores, so that its long scans and rewrites
    leave the single revocations (the latency that counts) cores of their own."""
    return DiffSession(
        ws.lake,
        source_versions(ws.lake),
        consent_snapshot(ws.engine, at).table,
        threads=BULK_THREADS,
        memory_limit=ws.settings.engine_memory,
        temp_directory=ws.settings.resolved_home / "tmp",
    )


def doomed_rows(
    ws: Workspace,
    session: DiffSession,
    *,
    mode: str,
    policy: Policy,
    agreement: Agreement,
    previous: Release,
    at: datetime,
    people: pa.Table | None,
    policy_at: datetime | None = None,
) -> list[Doomed]:
    """Register each table's doomed rows in `session`; `people` narrows an order (None: everyone).
    `policy_at` (default the release's as-of) is the instant whose policy version applies: a narrower
    policy revision is judged now."""
    directory = ws.share_dir(agreement.agreement_id)
    secret = agreement_secret(ws.master_key, agreement.agreement_id)
    incremental = people is not None
    if incremental:
        assert people is not None
        session.register_changes(Changes(None, users=people))
    rules_at = previous.as_of if policy_at is None else policy_at
    plan = plan_release(policy, agreement, secret, at, incremental=incremental, policy_at=rules_at)
    if mode == NARROWED:
        session.prepare(plan)
    plans = {p.category: p for p in plan.categories}
    out: list[Doomed] = []
    for pinned in previous.tables:
        category_plan = plans.get(pinned.category)
        path = directory / pinned.category
        if (
            not is_licensed_data(pinned.category)
            or category_plan is None
            or delta.table_version(path) is None
        ):
            continue
        existing = session.existing(pinned.category, path)  # current: a dead chunk's commit adopted
        owner = next((c for c in ("author_key", "user_key") if c in category_plan.columns), None)
        keys = tuple(dict.fromkeys((*category_plan.identity, delta.PARTITION, *([owner] if owner else []))))
        selected = ", ".join(keys)
        if mode == EVERYTHING:
            source = f"SELECT {selected} FROM {existing}"
        else:
            source = (
                f"SELECT {selected} FROM ({session.diff_sql(category_plan, existing)}) "
                f"WHERE {delta.OP} = 'delete'"
            )
        relation = f"__bulk_{pinned.category}"
        order = ", ".join((delta.PARTITION, *category_plan.identity))
        session.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {relation} AS SELECT {selected}, 'delete' AS {delta.OP}, "
            f"row_number() OVER (ORDER BY {order}) AS _n FROM ({source})"
        )
        counted = session.con.execute(
            f"SELECT count(*), count(DISTINCT {owner or keys[0]}) FROM {relation}"
        ).fetchall()[0]
        ends = session.con.execute(
            f"SELECT max(_n) AS e FROM {relation} GROUP BY {delta.PARTITION} ORDER BY e"
        ).fetchall()
        out.append(
            Doomed(
                pinned.category,
                path,
                relation,
                int(counted[0]),
                int(counted[1]),
                category_plan.columns,
                category_plan.identity,
                tuple(int(e) for (e,) in ends),
            )
        )
    return out


def chunk_sql(doomed: Doomed, low: int, high: int) -> str:
    """The doomed rows numbered `low` … `high` (1-based, inclusive), as a relation for `delta.rewrite`:
    the keys and bucket of each, NULL for the table's other columns (deletes carry no values)."""
    kept = {*doomed.identity, delta.PARTITION}
    columns = ", ".join(c if c in kept else f"NULL AS {c}" for c in doomed.columns)
    return f"(SELECT {columns}, {delta.OP} FROM {doomed.relation} WHERE _n BETWEEN {low} AND {high})"
