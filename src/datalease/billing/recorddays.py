"""Record-days from the lineage: rows × time each row was in the partner's current snapshot.

Never a second copy: the release ledger says which table versions were the partner's snapshot and
from when (`holdings`: from a release's instant until the next release's, clipped to the period); the
Delta log of those versions names their data files; each distinct file (copy-on-write files are
shared by many versions) is read once for its `user_key` counts; and the keys are mapped back to
people by recomputing HMAC(agreement secret, user id) for the platform's users. One DuckDB query
joins it all. A row stops earning when a release withdraws it (the interval of the version holding it
ends). A person who opted out stops earning at the opt-out instant: `gaps` remove the stretch from
that instant until the release that withdrew their rows (all their rows of that agreement).

Amounts are exact integers: row-microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from datalease.billing.invoices import release_instant
from datalease.billing.period import Period
from datalease.releases.keys import user_key
from datalease.releases.model import Release
from datalease.releases.support_tables import is_licensed_data
from datalease.revocation.model import ForgetEntry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Holding:
    """Table versions that were the partner's snapshot during [start, end) (inside the period)."""

    release_id: int
    start: datetime
    end: datetime
    versions: tuple[tuple[str, int], ...]  # (category, table version)


def release_instants(releases: Sequence[Release]) -> dict[int, datetime]:
    """When each release became the partner's snapshot, made consistent with the release order: a
    release is superseded by the next one by id, so an instant after the next release's (a build
    back-dated with `--at` after a revocation delivered by the wall clock) is taken as the next one's."""
    ordered = sorted(releases, key=lambda r: r.release_id)
    instants = [release_instant(r) for r in ordered]
    for i in range(len(instants) - 2, -1, -1):
        instants[i] = min(instants[i], instants[i + 1])
    return {r.release_id: at for r, at in zip(ordered, instants, strict=True)}


def holdings(releases: Sequence[Release], period: Period) -> list[Holding]:
    """The release intervals that meet the period; the next release (by id) ends one."""
    ordered = sorted(releases, key=lambda r: r.release_id)
    at = release_instants(ordered)
    found = []
    for i, release in enumerate(ordered):
        start = max(at[release.release_id], period.start)
        end = min(at[ordered[i + 1].release_id] if i + 1 < len(ordered) else period.end, period.end)
        if start < end:
            versions = tuple(
                (t.category, t.table_version) for t in release.tables if is_licensed_data(t.category)
            )
            found.append(Holding(release.release_id, start, end, versions))
    return found


def merge_gaps(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def row_micros(
    share_dir: Path,
    releases: Sequence[Release],
    period: Period,
    users: Mapping[str, int],
    gaps: Mapping[str, Sequence[tuple[datetime, datetime]]],
    memory_limit: str | None = None,
) -> dict[int, int]:
    """Per user id: row-microseconds of their rows held by the partner in the period.

    `users` maps each person's key in this agreement to their id; `gaps` (by key) are the stretches in
    which a person's rows do not earn. Keys in the share that map to nobody earn nothing.
    `memory_limit` is DuckDB's (the engine's setting): the (file, key) counts spill beyond it, which
    keeps a year of daily releases for 1M people under 2 GiB.
    """
    held = holdings(releases, period)
    if not held:
        return {}
    files: dict[str, None] = {}
    holding_rows: list[tuple[str, int]] = []
    for h_index, holding in enumerate(held):
        for category, version in holding.versions:
            for uri in DeltaTable(str(share_dir / category), version=version).file_uris():
                files.setdefault(uri, None)
                holding_rows.append((uri, h_index))
    if not files:
        return {}
    intervals = pa.table(
        {
            "h": list(range(len(held))),
            "s": [_micros(h.start) for h in held],
            "e": [_micros(h.end) for h in held],
        }
    )
    holds = pa.table({"file": [f for f, _ in holding_rows], "h": [h for _, h in holding_rows]})
    keys = pa.table({"user_key": list(users), "user_id": list(users.values())})
    gap_rows = [(k, _micros(s), _micros(e)) for k, spans in gaps.items() for s, e in merge_gaps(spans)]
    gap_table = pa.table(
        {
            "user_key": pa.array([g[0] for g in gap_rows], pa.string()),
            "gs": pa.array([g[1] for g in gap_rows], pa.int64()),
            "ge": pa.array([g[2] for g in gap_rows], pa.int64()),
        }
    )
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
    try:
        for name, table in (("intervals", intervals), ("holds", holds), ("keys", keys), ("gaps", gap_table)):
            con.register(name, table)
        rows = con.execute(
            f"""
            WITH counts AS (
                SELECT filename AS file, user_key, count(*)::HUGEINT AS n
                FROM read_parquet([{listing}], filename = true, hive_partitioning = false,
                                  union_by_name = true)
                GROUP BY ALL
            ),
            per_holding AS (
                SELECT c.user_key, h.h, sum(c.n) AS n FROM counts c JOIN holds h USING (file) GROUP BY ALL
            ),
            held AS (SELECT p.user_key, p.h, p.n, i.s, i.e FROM per_holding p JOIN intervals i USING (h)),
            cut AS (
                SELECT held.user_key, held.h, held.n, held.s, held.e,
                       coalesce(sum(CASE WHEN g.user_key IS NULL THEN 0
                                         ELSE greatest(0, least(held.e, g.ge) - greatest(held.s, g.gs)) END), 0) AS off
                FROM held LEFT JOIN gaps g ON g.user_key = held.user_key AND g.gs < held.e AND g.ge > held.s
                GROUP BY ALL
            )
            SELECT k.user_id, sum(cut.n * (cut.e - cut.s - cut.off))::HUGEINT AS micros
            FROM cut JOIN keys k USING (user_key)
            GROUP BY k.user_id
            """
        ).fetchall()
    finally:
        con.close()
    return {int(user_id): int(micros) for user_id, micros in rows if micros > 0}


def opt_out_gaps(
    entries: Iterable[ForgetEntry], releases: Sequence[Release], effective: Mapping[int, datetime]
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per person's key: from each opt-out instant until the instant of the release that delivered it
    (which withdrew the person's rows). The opt-out instant is the setting's effective instant
    (`effective`, by intent id), else when it was requested; only user-scope forget entries count."""
    instants = release_instants(releases)
    gaps: dict[str, list[tuple[datetime, datetime]]] = {}
    for entry in entries:
        if entry.scope != "user" or entry.release_id not in instants:
            continue
        start = effective.get(entry.intent_id, entry.requested_at)
        gaps.setdefault(entry.subject_key, []).append((start, max(instants[entry.release_id], start)))
    return gaps


def people_keys(secret: bytes, user_ids: Iterable[int]) -> dict[str, int]:
    """Each person's key in one agreement, recomputed: HMAC(agreement secret, user id)."""
    return {user_key(secret, int(u)): int(u) for u in user_ids}
