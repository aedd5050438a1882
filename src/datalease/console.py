"""Rich renderings shared by the CLI and the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from datalease.releases.model import KIND_REVOCATION, Release


def print_release(
    console: Console, release: Release, full_reason: str | None = None, changed_inputs: int = 0
) -> None:
    if release.kind == KIND_REVOCATION:
        kind = "revocation (deletes only; the diff base of the previous build is kept)"
    elif release.full_build:
        kind = f"full build ({full_reason})" if full_reason else "full build"
    else:
        kind = f"incremental build ({changed_inputs} changed inputs)"
    console.print(
        f"release {release.release_id} of {release.agreement_id}: {kind} in {release.duration_ms} ms, "
        f"policy {release.policy_version}, consent watermark #{release.consent_watermark}"
    )
    table = Table("table", "version", "rows", "added", "removed", "files +/-")
    for t in release.tables:
        table.add_row(
            t.category,
            str(t.table_version),
            str(t.rows_total),
            str(t.rows_added),
            str(t.rows_removed),
            f"{t.files_added}/{t.files_removed}",
        )
    console.print(table)
    top = sorted(((n, code) for code, n in release.excluded.items() if n), reverse=True)[:5]
    if top:
        estimate = (
            f" (estimated from a 1-in-{release.excluded_sample_every} sample)"
            if release.excluded_sample_every > 1
            else ""
        )
        console.print(f"rows withheld, top reasons{estimate}: " + ", ".join(f"{code} {n}" for n, code in top))
