"""`release build|list|show|optimize|purge`: consent-filtered releases as Delta tables."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import (
    AtOption,
    HomeOption,
    JsonOption,
    err,
    maybe_instant,
    out,
    print_json,
    workspace,
)
from datalease.console import print_release
from datalease.platform.schemas import MAX_ID

release_app = typer.Typer(no_args_is_help=True, help="Consent-filtered releases as Delta tables.")


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")


@release_app.command("build")
def release_build(
    agreement_id: str,
    full: Annotated[
        bool, typer.Option("--full", help="Recompute everything instead of the changes.")
    ] = False,
    at: AtOption = None,
    home: HomeOption = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="duckdb (embedded) or spark (DATALEASE_SPARK_MASTER); default DATALEASE_ENGINE.",
        ),
    ] = None,
) -> None:
    """Build the agreement's next release: only what changed, unless --full or the policy changed."""
    from datalease.services.releases import build_release

    result = build_release(
        workspace(home),
        agreement_id,
        at=maybe_instant(at),
        full=full,
        on_step=lambda m: err.print(m),
        engine=engine,
    )
    print_release(out, result.release, result.full_reason, result.changed_inputs)


@release_app.command("optimize")
def release_optimize(agreement_id: str, home: HomeOption = None) -> None:
    """Compact the share's small files (a dataChange=false commit: partners' change feeds show nothing)."""
    from datalease.services.releases import optimize_release

    result = optimize_release(workspace(home), agreement_id)
    if result.release is None:
        out.print(f"{agreement_id}: nothing to compact (no bucket has two small files)")
        return
    for done in result.compactions:
        out.print(
            f"{agreement_id}.{done.category}: {done.files_before} → {done.files_after} file(s), "
            f"{done.bytes_rewritten:,} bytes rewritten"
        )
    out.print(f"release {result.release.release_id} (optimize) pins the compacted versions")


@release_app.command("purge")
def release_purge(
    agreement_id: Annotated[
        str | None, typer.Argument(help="One agreement (default: every agreement).")
    ] = None,
    at: AtOption = None,
    home: HomeOption = None,
) -> None:
    """Delete from disk the files of superseded versions older than each agreement's retention window."""
    from datalease.services.releases import purge

    for done in purge(workspace(home), agreement_id, now=maybe_instant(at)):
        out.print(
            f"{done.agreement_id}.{done.result.table}: {done.result.files} file(s), {done.result.bytes:,} bytes "
            f"purged (retention {done.retention_days} days)"
        )


@release_app.command("list")
def release_list(
    agreement: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Every release in the ledger."""
    from datalease.services.releases import releases

    found = releases(workspace(home), agreement)
    if as_json:
        print_json([asdict(r) for r in found])
        return
    table = Table("release", "agreement", "as of", "policy", "watermark", "kind", "tables", "ms")
    for r in found:
        tables = ", ".join(f"{t.category}@v{t.table_version}:{t.rows_total}" for t in r.tables)
        table.add_row(
            str(r.release_id),
            r.agreement_id,
            f"{r.as_of:%Y-%m-%d %H:%M}",
            r.policy_version or "-",
            str(r.consent_watermark),
            r.kind if r.kind != "build" else ("full" if r.full_build else "incremental"),
            tables,
            str(r.duration_ms),
        )
    out.print(table)


@release_app.command("show")
def release_show(
    release_id: Annotated[int, typer.Argument(min=0, max=MAX_ID)],
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """One release: pinned table versions, counts, reasons rows were withheld."""
    from datalease.services.releases import release

    found = release(workspace(home), release_id)
    if as_json:
        print_json(asdict(found))
        return
    print_release(out, found)
