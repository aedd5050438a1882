"""`init`, `ingest`, `curate`, `users list`: the platform's own data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import HomeOption, JsonOption, out, print_json, progress, workspace

users_app = typer.Typer(no_args_is_help=True, help="Platform users.")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(ingest)
    app.command()(curate)
    app.add_typer(users_app, name="users")


def init(home: HomeOption = None) -> None:
    """Create the state directory, the lake and the store schema (safe to run twice)."""
    ws = workspace(home)
    ws.init()
    out.print(f"initialised {ws.settings.resolved_home}")


def ingest(
    table: Annotated[str, typer.Argument(help="users, posts, likes, reposts or bookmarks")],
    file: Annotated[Path, typer.Argument(help="A .parquet, .csv or .jsonl file")],
    rejects: Annotated[Path | None, typer.Option(help="Where to write rejected rows (JSONL).")] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the whole batch if any row is bad.")] = False,
    home: HomeOption = None,
) -> None:
    """Load a file into the source lake: good rows in one atomic commit, bad rows to a rejects file."""
    from datalease.services.platform import ingest as ingest_rows

    with progress(f"ingest {table}", None) as advance:
        result = ingest_rows(
            workspace(home), table, file, rejects=rejects, strict=strict, on_progress=advance
        )
    if not result.accepted and not result.rejected:
        out.print(f"{table}: no rows in {file}; nothing written")
        return
    out.print(f"{table}: {result.accepted} accepted, {result.rejected} rejected")
    if result.rejected:
        out.print(f"rejected rows (row number and reason): {result.rejects_path}")


def curate(
    workers: Annotated[int | None, typer.Option(help="Processes (default: every core).")] = None,
    home: HomeOption = None,
) -> None:
    """Scrub PII and score sentiment of new or changed posts, once per post."""
    from datalease.services.platform import curate_posts

    with progress("curate posts", None) as advance:
        result = curate_posts(workspace(home), workers=workers, on_progress=advance)
    out.print(f"curated {result.curated}, unchanged {result.unchanged}, removed {result.removed}")


@users_app.command("list")
def users_list(
    region: Annotated[
        str | None, typer.Option(help="Only users of this policy region ('*' = no region).")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many rows (0 = all).")] = 50,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Platform users with their region (under the active policy) and account state."""
    from datalease.services.platform import users

    rows = users(workspace(home), region=region, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("user_id", "handle", "country", "region", "state", "birth_date")
    for row in rows:
        table.add_row(
            str(row["user_id"]),
            row["handle"],
            row["country"],
            row["region"],
            row["account_state"],
            str(row["birth_date"]),
        )
    out.print(table)
