"""`partnerkit sync`: a local copy of one shared table that follows the change feed.

The first run reads the snapshot at the table's current version; later runs read the change feed from
the recorded version + 1 to the current one and apply it by the table's key columns (every column whose
name ends in `_key`): `delete` / `update_preimage` remove a key (their other columns are null),
`insert` / `update_postimage` add or replace it, version by version. If the feed cannot be read from
there any more (purged on the server) the snapshot is read again; keys it lacks are gone.

The copy is `data-v{VERSION}.parquet` and `state.json` names it; both are written atomically (data
first, then the state that points at it), so a killed sync leaves the previous state intact. Each
sync also keeps the share's `ledger_head` table in `ledger_head.parquet` (partnerkit/witness.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import delta_sharing
import pandas as pd

from partnerkit.errors import PartnerError
from partnerkit.profile import Profile
from partnerkit.store import read_json, write_json_atomic, write_parquet_atomic
from partnerkit.witness import WitnessResult, keep_ledger_head

STATE_FILE = "state.json"
KEY_SEPARATOR = "|"
CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")
REMOVALS = ("delete", "update_preimage")
ADDITIONS = ("insert", "update_postimage")


@dataclass(frozen=True)
class SyncResult:
    table: str
    version: int
    previous_version: int | None
    rows: int
    inserted: int
    deleted: int
    snapshot: bool  # read the whole table (first run or feed unreadable)
    witness: WitnessResult | None = None  # the share's ledger_head kept beside it (partnerkit/witness.py)

    def describe(self) -> str:
        how = "snapshot" if self.snapshot else f"changes {self.previous_version}→{self.version}"
        text = (
            f"{self.table}: version {self.version} ({how}); {self.rows} rows "
            f"(+{self.inserted} inserted, -{self.deleted} deleted)"
        )
        return text + (f"\n{self.witness.describe()}" if self.witness else "")


def key_columns(columns: list[str]) -> list[str]:
    keys = sorted(c for c in columns if c.endswith("_key"))
    if not keys:
        raise PartnerError(f"the table has no key column (a column ending in `_key`): {columns}")
    return keys


def row_keys(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """One identity text per row: the key columns joined with `|` (sorted column names)."""
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    return frame[keys].astype(str).agg(KEY_SEPARATOR.join, axis=1)


def read_state(directory: Path) -> dict[str, Any] | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    state: dict[str, Any] = read_json(path)
    return state


def read_local(directory: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The state and the local copy of the table (raises if nothing was synced)."""
    state = read_state(directory)
    if state is None:
        raise PartnerError(
            f"{directory}: nothing synced yet (run `partnerkit sync PROFILE --table ... --dir`)"
        )
    return state, pd.read_parquet(directory / state["data_file"])


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _snapshot(url: str) -> tuple[int, pd.DataFrame]:
    version = int(delta_sharing.get_table_version(url))
    try:
        frame = delta_sharing.load_as_pandas(url, version=version)
    except Exception:  # the table moved on (a new history floor) between the two calls: read latest
        version = int(delta_sharing.get_table_version(url))
        frame = delta_sharing.load_as_pandas(url, version=version)
    return version, frame


def apply_changes(local: pd.DataFrame, feed: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, int, int]:
    """Replay a change feed on the local rows, version by version. Returns (rows, inserted, deleted)."""
    columns = list(local.columns)
    current = local.set_index(row_keys(local, keys), drop=False) if not local.empty else local
    inserted = deleted = 0
    for version in sorted(int(v) for v in feed["_commit_version"].unique()):
        part = feed[feed["_commit_version"].astype("int64") == version]
        removal = part[part["_change_type"].isin(REMOVALS)]
        gone = set(row_keys(removal, keys))
        before = len(current)
        current = current[~current.index.isin(gone)]
        deleted += before - len(current)
        addition = part[part["_change_type"].isin(ADDITIONS)][columns]
        if not addition.empty:
            addition = addition.set_index(row_keys(addition, keys), drop=False)
            addition = addition[~addition.index.duplicated(keep="last")]
            replaced = current.index.isin(addition.index)
            current = current[~replaced]
            inserted += len(addition) - int(replaced.sum())
            typed = addition.astype({c: current[c].dtype for c in columns if c in current}, errors="ignore")
            current = pd.concat([current, typed]) if not current.empty else typed
    current = current.reset_index(drop=True)
    return current, inserted, deleted


def sync(directory: Path, profile: Profile, table: str | None = None) -> SyncResult:
    """Bring the local copy up to the table's current version (the caller holds the directory lock)."""
    state = read_state(directory)
    if state is not None and table is not None and table != state["table"]:
        raise PartnerError(f"{directory} follows {state['table']}, not {table}")
    table = table or (state["table"] if state else None)
    if table is None or table.count(".") != 2:
        raise PartnerError(f"--table: expected SHARE.SCHEMA.TABLE, got {table!r}")
    url = profile.table_url(table)
    previous = int(state["version"]) if state else None
    snapshot = state is None
    inserted = deleted = 0
    if state is not None:
        local = pd.read_parquet(directory / state["data_file"])
        keys = list(state["key_columns"])
        latest = int(delta_sharing.get_table_version(url))
        version = max(latest, int(state["version"]))
        if latest > int(state["version"]):
            try:
                feed = delta_sharing.load_table_changes_as_pandas(
                    url, starting_version=int(state["version"]) + 1, ending_version=latest
                )
            except Exception:  # the feed is purged from there: read the snapshot again
                snapshot = True
            else:
                if not feed.empty:
                    local, inserted, deleted = apply_changes(local, feed, keys)
        if snapshot:
            version, fresh = _snapshot(url)
            fresh_keys = set(row_keys(fresh, keys))
            old_keys = set(row_keys(local, keys))
            inserted, deleted = len(fresh_keys - old_keys), len(old_keys - fresh_keys)
            local = fresh
    else:
        version, local = _snapshot(url)
        keys = key_columns(list(local.columns))
        inserted = len(local)
    local = local[[c for c in local.columns if c not in CDF_COLUMNS]]
    data_file = f"data-v{version}.parquet"
    write_parquet_atomic(directory / data_file, local)
    write_json_atomic(
        directory / STATE_FILE,
        {
            "table": table,
            "profile": str(profile.path),
            "version": version,
            "key_columns": keys,
            "data_file": data_file,
            "rows": len(local),
            "synced_at": _now(),
        },
    )
    if state is not None and state["data_file"] != data_file:
        (directory / state["data_file"]).unlink(missing_ok=True)
    witness = keep_ledger_head(directory, profile, table)
    return SyncResult(table, version, previous, len(local), inserted, deleted, snapshot, witness)


def replace_local(directory: Path, frame: pd.DataFrame) -> None:
    """Rewrite the local copy in place (forget removes rows the feed has not deleted yet)."""
    state, _ = read_local(directory)
    write_parquet_atomic(directory / state["data_file"], frame)
    write_json_atomic(directory / STATE_FILE, {**state, "rows": len(frame)})
