"""`consent set|show|verify|import`: the append-only, hash-chained consent ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from datalease.cli.common import AtOption, HomeOption, JsonOption, maybe_instant, out, print_json, workspace
from datalease.errors import UserError

consent_app = typer.Typer(no_args_is_help=True, help="The consent ledger: record, show, verify.")


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")


@consent_app.command("set")
def consent_set(
    user: str,
    key: str,
    value: str,
    at: AtOption = None,
    source: Annotated[str, typer.Option(help="user, platform or import")] = "user",
    actor: Annotated[str | None, typer.Option(help="Who made the change (default: the user).")] = None,
    home: HomeOption = None,
) -> None:
    """Record a setting change in the append-only, hash-chained ledger."""
    from datalease.services.consent import record_setting

    event = record_setting(
        workspace(home), user, key, value, at=maybe_instant(at), source=source, actor=actor
    )
    out.print(
        f"recorded #{event.seq}: user {event.user_id} {key}={str(event.value).lower()} at {event.at.isoformat()}"
    )


@consent_app.command("show")
def consent_show(
    user: str, at: AtOption = None, as_json: JsonOption = False, home: HomeOption = None
) -> None:
    """A user's effective settings as of T (unset keys follow the policy's default)."""
    from datalease.services.consent import notices_followed, settings_of

    ws = workspace(home)
    found = settings_of(ws, user, maybe_instant(at))
    followed = notices_followed(ws, found)
    rows = [
        {
            "key": k,
            "value": s.value,
            "at": s.at.isoformat(),
            "source": s.source,
            "actor": s.actor,
            "seq": s.seq,
            "after_notice": followed[k],
            "notice_sha256": s.notice_sha256,
            "notice_locale": s.notice_locale,
            "surface": s.surface,
        }
        for k, s in sorted(found.states.items())
    ]
    if as_json:
        print_json({"user_id": found.user_id, "at": found.at.isoformat(), "settings": rows})
        return
    table = Table(
        "key",
        "value",
        "since",
        "source",
        "actor",
        "#",
        "after notice",
        title=f"user {found.user_id} as of {found.at:%Y-%m-%d %H:%M} UTC",
    )
    for key, state in sorted(found.states.items()):
        table.add_row(
            key,
            str(state.value).lower(),
            state.at.isoformat(),
            state.source,
            state.actor,
            str(state.seq),
            followed[key] or "—",
        )
    out.print(table if rows else "no explicit settings: the policy's defaults apply")
    if rows:
        out.print("\n".join(_chosen_lines(found.states, followed)))


@consent_app.command("import")
def consent_import(file: Path, home: HomeOption = None) -> None:
    """Record a history of choices from a JSON Lines file, all or nothing (source and surface
    import; each line may name the notice shown: notice_sha256 and locale)."""
    from datalease.services.consent_import import import_events

    result = import_events(workspace(home), file)
    span = f" (#{result.first_seq}..#{result.last_seq})" if result.first_seq is not None else ""
    out.print(f"imported {result.appended} events{span}; {result.already_present} already recorded")


AnchorOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--anchor",
        help=(
            "A head file, a dataset card or a partner's copy of the share's ledger_head table "
            "(a Delta or Parquet folder, a partnerkit directory, JSON/JSONL/CSV); repeatable."
        ),
    ),
]


@consent_app.command("verify")
def consent_verify(anchor: AnchorOption = None, home: HomeOption = None) -> None:
    """Recompute the hash chain; name the first edited, deleted or reordered event; then check the
    state derived from it (consent_current, the chain head and its digest). With --anchor, also
    check each recorded head (seq, hash): a truncated or rewritten tail is named."""
    from datalease.services.anchors import verify_anchors
    from datalease.services.consent import verify_ledger

    ws = workspace(home)
    if anchor:
        check = verify_anchors(ws, anchor)
        if check.problems:
            raise UserError(
                "consent ledger does NOT match its anchors:\n" + "\n".join(p.message for p in check.problems)
            )
        out.print(f"anchors hold: {check.checked} recorded head(s) found in the ledger with their hashes")
    result = verify_ledger(ws)
    if not result.ok and result.first_bad_seq is None:  # sound events, wrong derived state
        raise UserError(f"consent state is NOT intact ({result.checked} events verified): {result.problem}")
    if not result.ok:
        raise UserError(f"consent ledger is NOT intact after {result.checked} events: {result.problem}")
    out.print(f"consent ledger intact: {result.checked} events verified")


def _chosen_lines(states: dict[str, Any], followed: dict[str, str | None]) -> list[str]:
    """ "share.posts: you chose this on 2 Nov 2024 after notice 2024-11 (en)" per setting (issue 15)."""
    return [
        f"{key}: you chose this on {state.at:%-d %b %Y}"
        + (f" after notice {followed[key]}" if followed[key] else "")
        for key, state in sorted(states.items())
    ]
