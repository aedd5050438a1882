"""The share's `ledger_head` table kept beside each synced table: the partner's witness of the
platform's consent ledger (one row per release: `release_id`, `consent_seq`, `consent_hash`, …).

Rows already held are never replaced or dropped: a witness that followed the server's edits would
witness nothing. A row the server now serves differently, or no longer serves, is kept as first read
and reported as a conflict. Written atomically as `DIR/ledger_head.parquet`, which the platform's
`datalease consent verify --anchor DIR` (or a regulator holding the file) checks against its ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import delta_sharing
import pandas as pd
from delta_sharing.protocol import Schema

from partnerkit.profile import Profile
from partnerkit.store import write_parquet_atomic

TABLE = "ledger_head"
WITNESS_FILE = "ledger_head.parquet"
IDENTITY = "release_id"
HEAD = ("consent_seq", "consent_hash")


@dataclass(frozen=True)
class WitnessResult:
    rows: int
    added: int
    conflicts: tuple[int, ...]  # release ids whose row the server no longer serves as it was held

    def describe(self) -> str:
        text = f"{TABLE}: {self.rows} releases witnessed (+{self.added})"
        if self.conflicts:
            ids = ", ".join(str(i) for i in self.conflicts)
            text += f"; CONFLICT: the server no longer serves the held rows of release(s) {ids} (kept)"
        return text


def served(profile: Profile, share: str, schema: str) -> bool:
    """Whether the share lists a ledger_head table (shares built before it have none yet)."""
    client = delta_sharing.SharingClient(str(profile.path))
    return any(t.name == TABLE for t in client.list_tables(Schema(schema, share)))


def merge(held: pd.DataFrame | None, fresh: pd.DataFrame) -> tuple[pd.DataFrame, int, tuple[int, ...]]:
    """The held rows as they are, plus the served rows of releases not held yet; (rows, added, the
    release ids whose held row differs from the served one or is no longer served)."""
    if held is None or held.empty:
        return fresh.sort_values(IDENTITY).reset_index(drop=True), len(fresh), ()
    served_heads = {int(r[IDENTITY]): tuple(r[c] for c in HEAD) for r in fresh.to_dict("records")}
    conflicts = tuple(
        sorted(
            int(r[IDENTITY])
            for r in held.to_dict("records")
            if served_heads.get(int(r[IDENTITY])) != tuple(r[c] for c in HEAD)
        )
    )
    new = fresh[~fresh[IDENTITY].isin(held[IDENTITY])]
    rows = pd.concat([held, new[list(held.columns)]]) if not new.empty else held
    return rows.sort_values(IDENTITY).reset_index(drop=True), len(new), conflicts


def keep_ledger_head(directory: Path, profile: Profile, table: str) -> WitnessResult | None:
    """Bring DIR/ledger_head.parquet up to the share's ledger_head (None: the share has none)."""
    share, schema, _ = table.split(".")
    if not served(profile, share, schema):
        return None
    fresh = delta_sharing.load_as_pandas(profile.table_url(f"{share}.{schema}.{TABLE}"))
    path = directory / WITNESS_FILE
    held = pd.read_parquet(path) if path.exists() else None
    rows, added, conflicts = merge(held, fresh)
    write_parquet_atomic(path, rows)
    return WitnessResult(len(rows), added, conflicts)
