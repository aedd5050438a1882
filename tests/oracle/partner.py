"""What a partner gets, read with the official `delta-sharing` client only: the tables it lists, each
table's snapshot, its change feed replayed from version 0, and a copy kept in step version by
version (each sync reads the changes after the last version it saw).

Every file the client reads (in the parquet response format, each file becomes one frame inside
the client; in the delta format the kernel reads the files and hands back one frame) is kept, so
the tests can look for revoked text in anything that reached the partner.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import delta_sharing
import numpy as np
import pandas as pd
from delta_sharing.reader import DeltaSharingReader

SCHEMA: Final = "platform"
CDF_COLUMNS: Final = ("_change_type", "_commit_version", "_commit_timestamp")
REMOVALS: Final = ("delete", "update_preimage")
ADDITIONS: Final = ("insert", "update_postimage")

Row = dict[str, Any]


def plain(value: Any) -> Any:
    """A cell as plain Python: timestamps as aware UTC datetimes, arrays as tuples, NaN as None."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        stamp = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
        return stamp.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, np.ndarray | list | tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def frame_rows(frame: pd.DataFrame) -> list[Row]:
    return [{str(k): plain(v) for k, v in record.items()} for record in frame.to_dict(orient="records")]


@dataclass
class Capture:
    """The frames of every file the client read while the capture was on."""

    frames: list[pd.DataFrame] = field(default_factory=list)

    def strings(self) -> Iterator[str]:
        for frame in self.frames:
            for column in frame.columns:
                for value in frame[column]:
                    yield from _strings(value)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, np.ndarray | list | tuple):
        for item in value:
            yield from _strings(item)


@contextmanager
def capturing_files() -> Iterator[Capture]:
    """Keep the frame of every file the client reads in the parquet format (the client's own reader
    still reads it; this only looks at what it returns)."""
    capture = Capture()
    original = DeltaSharingReader._to_pandas

    def keep(*args: Any, **kwargs: Any) -> pd.DataFrame:
        frame: pd.DataFrame = original(*args, **kwargs)
        capture.frames.append(frame.copy())
        return frame

    DeltaSharingReader._to_pandas = staticmethod(keep)
    try:
        yield capture
    finally:
        DeltaSharingReader._to_pandas = staticmethod(original)


def fold(
    rows: Mapping[tuple[Any, ...], Row], changes: Sequence[Row], identity: Sequence[str]
) -> tuple[dict[tuple[Any, ...], Row], list[str]]:
    """Apply a change feed to a copy of `rows`, version by version (removals, then additions); the
    problems found on the way (a removal that carries more than the keys, an unknown change type)."""
    state = dict(rows)
    problems: list[str] = []
    by_version: dict[int, list[Row]] = {}
    for change in changes:
        by_version.setdefault(int(change["_commit_version"]), []).append(change)
    for version in sorted(by_version):
        batch = by_version[version]
        for change in batch:
            kind = change["_change_type"]
            if kind not in REMOVALS + ADDITIONS:
                problems.append(f"version {version}: change type {kind!r}")
            if kind in REMOVALS:
                extra = {
                    k: v
                    for k, v in change.items()
                    if k not in identity and not k.endswith("_key") and k not in CDF_COLUMNS and v is not None
                }
                if extra:
                    problems.append(f"version {version}: a {kind} row carries more than its keys: {extra}")
                state.pop(tuple(change[k] for k in identity), None)
        for change in batch:
            if change["_change_type"] in ADDITIONS:
                row = {k: v for k, v in change.items() if k not in CDF_COLUMNS}
                state[tuple(change[k] for k in identity)] = row
    return state, problems


@dataclass
class TableCopy:
    """A partner's copy of one table, kept in step with the change feed."""

    version: int = -1
    rows: dict[tuple[Any, ...], Row] = field(default_factory=dict)


@dataclass
class Partner:
    name: str
    profile: Path
    read_format: str  # parquet | delta
    copies: dict[tuple[str, str], TableCopy] = field(default_factory=dict)

    def url(self, share: str, table: str) -> str:
        return f"{self.profile}#{share}.{SCHEMA}.{table}"

    def listed(self) -> set[tuple[str, str]]:
        client = delta_sharing.SharingClient(str(self.profile))
        return {(t.share, t.name) for t in client.list_all_tables()}

    def version(self, share: str, table: str) -> int:
        return int(delta_sharing.get_table_version(self.url(share, table)))

    def snapshot(self, share: str, table: str) -> tuple[list[str], list[Row]]:
        frame = delta_sharing.load_as_pandas(
            self.url(share, table), use_delta_format=self.read_format == "delta"
        )
        return [str(c) for c in frame.columns], frame_rows(frame)

    def changes(self, share: str, table: str, start: int, end: int | None = None) -> list[Row]:
        frame = delta_sharing.load_table_changes_as_pandas(
            self.url(share, table),
            starting_version=start,
            ending_version=end,
            use_delta_format=self.read_format == "delta",
        )
        return frame_rows(frame)
