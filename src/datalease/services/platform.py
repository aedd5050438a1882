"""The platform's own data: ingest files into the lake, curate posts, list users."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from datalease.errors import UserError
from datalease.platform.curate import CurateResult, curate
from datalease.platform.ingest import IngestError, IngestResult, ingest_file
from datalease.workspace import Workspace


def ingest(
    ws: Workspace,
    table: str,
    file: Path,
    *,
    rejects: Path | None = None,
    strict: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> IngestResult:
    ws.init()
    try:
        return ingest_file(ws.lake, table, file, rejects_path=rejects, strict=strict, on_progress=on_progress)
    except IngestError as exc:
        raise UserError(str(exc)) from exc


def curate_posts(
    ws: Workspace, *, workers: int | None = None, on_progress: Callable[[int], None] | None = None
) -> CurateResult:
    return curate(ws.lake, workers=workers or ws.settings.workers, on_progress=on_progress)


def users(ws: Workspace, *, region: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Platform users with their region under the active policy ('-' without one)."""
    policy = ws.active_policy()
    if region is not None and policy is not None and region not in (*policy.regions, "*"):
        raise UserError(f"--region {region!r}: expected one of {', '.join((*policy.regions, '*'))}")
    rows: list[dict[str, Any]] = []
    for user in ws.lake.read("users").to_pylist():
        user_region = policy.region_of(user["country"]) if policy else "-"
        if region is None or user_region == region:
            rows.append({**user, "region": user_region})
            if limit and len(rows) >= limit:
                break
    return rows
