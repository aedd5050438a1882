"""`serve`, `usage` and `demo`: the server, what it served, and a whole platform that ends with it up."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import HomeOption, JsonOption, err, out, print_json, settings, workspace
from datalease.config import Settings
from datalease.errors import UserError
from datalease.workspace import Workspace

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)
    app.command()(serve)
    app.command()(demo)


def usage(
    partner: Annotated[str | None, typer.Option(help="Only this partner.")] = None,
    month: Annotated[str | None, typer.Option(help="Only this month, YYYY-MM.")] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """What the sharing server served, per month, partner and agreement."""
    from datalease.services.sharing import usage as usage_totals

    if month is not None and not MONTH.fullmatch(month):
        raise UserError(f"--month {month!r}: expected YYYY-MM, e.g. 2026-11")
    totals = usage_totals(workspace(home), partner=partner, month=month)
    if as_json:
        print_json([asdict(t) for t in totals])
        return
    table = Table("month", "partner", "agreement", "queries", "requests", "files", "rows", "bytes")
    for t in totals:
        table.add_row(
            t.month,
            t.partner,
            t.agreement_id,
            f"{t.queries:,}",
            f"{t.requests:,}",
            f"{t.files:,}",
            f"{t.rows:,}",
            f"{t.bytes:,}",
        )
    out.print(table)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default 8000).")] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=256, help="API processes on the one port (uvicorn).")
    ] = 1,
    with_worker: Annotated[
        bool | None,
        typer.Option(
            "--with-worker/--without-worker",
            help="Run the revocation worker inside (default: with 1 process as "
            "DATALEASE_REVOCATION_WORKER says; with several, not — run `datalease worker`).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run the server: the Delta Sharing protocol under /delta-sharing, the JSON API, the pages."""
    chosen = settings(home)
    if host is not None:
        chosen.host = host
    if port is not None:
        chosen.port = port
    if with_worker is not None:
        chosen.revocation_worker = with_worker
    elif workers > 1:
        chosen.revocation_worker = False
    if workers > 1:
        _run_processes(chosen, workers)
        return
    _run(
        chosen,
        announce=lambda base: [
            f"platform API token (POST /api/v1/platform/events): {chosen.resolved_home / 'keys' / 'api.token'}",
            f"datalease serving {chosen.resolved_home} on {base}/delta-sharing",
        ],
        to_stderr=True,
    )


def demo(
    users: Annotated[int, typer.Option(min=1, help="How many platform users to generate.")] = 2000,
    posts_file: Annotated[
        Path | None, typer.Option(help="Post texts, one per line (else built-in generator).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0)] = 7,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End with the server up (demo sign-in on), or stop.")
    ] = True,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port for the server (default 8000).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Generate a demo platform, ingest, curate, apply the X 2024 policy, license, release, and serve."""
    from datalease.services.demo import run_demo

    chosen = settings(home).model_copy(update={"demo_login": True, **({"port": port} if port else {})})
    run_demo(Workspace(chosen), users=users, posts_file=posts_file, seed=seed, console=out)
    if not serve_after:
        return
    _run(
        chosen,
        announce=lambda base: [
            f"user pages:       {base}/login  (pick a demo user)",
            f"operator console: {base}/login  (operator token in {chosen.resolved_home / 'keys' / 'api.token'})",
            f"Delta Sharing:    {base}/delta-sharing  (Ctrl-C stops the server)",
        ],
        to_stderr=False,
    )


def _run(chosen: Settings, *, announce: Callable[[str], list[str]], to_stderr: bool) -> None:
    """Start the app under uvicorn, after printing what `announce(base URL)` says."""
    import uvicorn

    from datalease.app import create_app
    from datalease.services.api_token import api_token

    application = create_app(chosen)
    api_token(application.state.workspace)
    base = f"http://{chosen.host}:{chosen.port}"
    for line in announce(base):
        (err if to_stderr else out).print(line)
    uvicorn.run(application, host=chosen.host, port=chosen.port, log_level="warning")


def _run_processes(chosen: Settings, workers: int) -> None:
    """N uvicorn worker processes, each building the app from the environment (`create_app` as a
    factory). This process migrates the store and creates the master key and the API token first, so
    the N never race to create them."""
    import os

    import uvicorn

    from datalease.services.api_token import api_token

    ws = Workspace(chosen)
    ws.init()
    _ = ws.master_key
    api_token(ws)  # the file the N read (so `api-token rotate` still reaches them)
    os.environ.update(
        {
            "DATALEASE_HOME": str(chosen.resolved_home),
            "DATALEASE_HOST": chosen.host,
            "DATALEASE_PORT": str(chosen.port),
            "DATALEASE_REVOCATION_WORKER": "true" if chosen.revocation_worker else "false",
        }
    )
    if chosen.database_url:
        os.environ["DATALEASE_DATABASE_URL"] = chosen.database_url
    base = f"http://{chosen.host}:{chosen.port}"
    err.print(
        f"platform API token (POST /api/v1/platform/events): {chosen.resolved_home / 'keys' / 'api.token'}"
    )
    err.print(f"datalease serving {chosen.resolved_home} on {base}/delta-sharing with {workers} processes")
    uvicorn.run(
        "datalease.app:create_app",
        factory=True,
        host=chosen.host,
        port=chosen.port,
        workers=workers,
        log_level="warning",
        # A worker whose start-up takes longer than uvicorn's 5 s default (a loaded machine) would be
        # killed and restarted forever.
        timeout_worker_healthcheck=60,
    )
