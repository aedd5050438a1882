"""What every command group shares: the consoles, the common options, reading inputs, rendering JSON and
progress. Commands parse, call one use case (datalease.services) and render; the use case is imported
inside the command, so that a command loads only what it runs (start-up time)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from datalease.config import Settings
from datalease.errors import UserError
from datalease.policy.documents import decode_document
from datalease.policy.problems import MAX_DOCUMENT_BYTES
from datalease.timeparse import EARLIEST_AT, LATEST_AT, TimeFormatError, parse_bounded_instant, utc_now
from datalease.workspace import Workspace

out = Console()
err = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="DATALEASE_HOME", help="State directory (default ./.datalease)."),
]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help=f"Instant (ISO-8601 date or date-time, UTC, {EARLIEST_AT.year} to {LATEST_AT.year - 1}); default now.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings(home: Path | None) -> Settings:
    return Settings(home=home) if home else Settings()


def workspace(home: Path | None) -> Workspace:
    return Workspace(settings(home))


def instant(text: str | None, option: str = "--at") -> datetime:
    if text is None:
        return utc_now()
    try:
        return parse_bounded_instant(text)
    except TimeFormatError as exc:
        raise UserError(f"{option}: {exc}") from exc


def maybe_instant(text: str | None, option: str = "--at") -> datetime | None:
    return instant(text, option) if text is not None else None


def read_text(path: Path) -> str:
    """A YAML document file as text: at most MAX_DOCUMENT_BYTES are read (the path may be a device)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise UserError(f"{path}: is a directory, expected a file") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return decode_document(data, str(path))


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str, ensure_ascii=False))


def plain(text: str) -> None:
    """Print text as it is (no Rich markup, no highlighting, no wrapping)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
