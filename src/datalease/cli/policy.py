"""`policy validate|apply|show|diff` and `decide`: the policy as code, and one decision with reasons."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datalease.cli.common import (
    AtOption,
    HomeOption,
    JsonOption,
    instant,
    out,
    print_json,
    read_text,
    workspace,
)
from datalease.platform.schemas import MAX_ID
from datalease.policy.diff import describe_rule, diff_policies
from datalease.policy.load import load_policy
from datalease.policy.model import Policy
from datalease.policy.vocabulary import CATEGORIES, PURPOSES

policy_app = typer.Typer(no_args_is_help=True, help="Policy as code: validate, apply, show, diff.")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
    app.command("decide")(decide_command)


def parse_policy_file(path: Path) -> Policy:
    return load_policy(read_text(path), str(path))


@policy_app.command("validate")
def policy_validate(file: Path) -> None:
    """Check a policy file; print every problem as FILE:LINE:COL: field: expected …"""
    policy = parse_policy_file(file)
    out.print(
        f"{file}: OK — policy {policy.name}, {len(policy.versions)} versions, {len(policy.regions)} regions"
    )


@policy_app.command("apply")
def policy_apply(
    file: Path,
    actor: Annotated[str, typer.Option(help="Who applies it (kept with the revision).")] = "operator",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what it would withdraw from released shares; record nothing."),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Store a policy as the active revision. Versions already in force cannot be rewritten."""
    from datalease.cli.orders import print_impact
    from datalease.services.policy import apply_policy

    applied = apply_policy(workspace(home), read_text(file), str(file), actor=actor, dry_run=dry_run)
    if applied.replaced and (dry_run or any(r.rows for r in applied.impact)):
        print_impact(applied.impact, dry_run=dry_run)  # issue 14: a narrower policy is a bulk withdrawal
    if dry_run:
        out.print(f"dry run: {file} not applied")
        return
    if applied.revision is None:
        out.print("no change: the active policy already says this")
        return
    out.print(f"applied {file} as policy revision {applied.revision}")
    if applied.replaced:
        out.print(
            "the next `datalease release build` of each agreement is a full diff: it withdraws (deletes in "
            "the partners' change feeds) every row the new policy no longer allows"
        )


@policy_app.command("show")
def policy_show(
    file: Annotated[Path | None, typer.Argument(help="A policy file; default the active policy.")] = None,
    at: AtOption = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Show the policy, the version in force at T and its rules."""
    policy = parse_policy_file(file) if file else workspace(home).require_policy()
    when = instant(at)
    current = policy.version_at(when)
    upcoming = policy.next_version_after(when)
    if as_json:
        print_json(
            {
                "policy": policy.name,
                "at": when.isoformat(),
                "in_force": current.version_id if current else None,
                "next": {"id": upcoming.version_id, "effective_from": upcoming.effective_from.isoformat()}
                if upcoming
                else None,
                "regions": {k: sorted(v) for k, v in policy.regions.items()},
                "hard_exclusions": asdict(policy.hard_exclusions),
                "versions": [
                    {
                        "id": v.version_id,
                        "effective_from": v.effective_from.isoformat(),
                        "note": v.note,
                        "rules": [describe_rule(r) for r in v.rules],
                    }
                    for v in policy.versions
                ],
            }
        )
        return
    out.print(f"[bold]{policy.name}[/] — {policy.description}")
    out.print(f"in force at {when:%Y-%m-%d %H:%M} UTC: [bold]{current.version_id if current else 'none'}[/]")
    if upcoming:
        out.print(f"next: {upcoming.version_id} from {upcoming.effective_from.date()}")
    regions = Table("region", "countries")
    for name, countries in policy.regions.items():
        regions.add_row(name, " ".join(sorted(countries)))
    out.print(regions)
    for version in policy.versions:
        marker = " (in force)" if current and version.version_id == current.version_id else ""
        table = Table(
            "line", "rule", title=f"version {version.version_id} from {version.effective_from.date()}{marker}"
        )
        for rule in version.rules:
            table.add_row(str(rule.line), describe_rule(rule))
        out.print(table)


@policy_app.command("diff")
def policy_diff(a: Path, b: Path) -> None:
    """What changes from policy file A to policy file B."""
    changes = diff_policies(parse_policy_file(a), parse_policy_file(b))
    for line in changes:
        out.print(line, markup=False, highlight=False)
    if not changes:
        out.print("no differences")


def decide_command(
    user: Annotated[str, typer.Option("--user", help="user_id or @handle")],
    category: Annotated[str, typer.Option("--category", help=", ".join(CATEGORIES))],
    purpose: Annotated[list[str], typer.Option("--purpose", help="Repeatable: " + ", ".join(PURPOSES))],
    partner: Annotated[str | None, typer.Option("--partner")] = None,
    post: Annotated[
        int | None,
        typer.Option(
            "--post", min=0, max=MAX_ID, help="Decide for this post instead of a live public record."
        ),
    ] = None,
    at: AtOption = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """May a record of CATEGORY owned by USER go to these purposes (and partner) at T? With reasons."""
    from datalease.services.decisions import decide_record

    decided = decide_record(
        workspace(home), user, category, tuple(purpose), partner=partner, post=post, at=instant(at)
    )
    decision = decided.decision
    if as_json:
        print_json(
            {
                "user_id": decided.user_id,
                "category": category,
                "at": decided.at.isoformat(),
                **asdict(decision),
            }
        )
    else:
        verdict = "[green]allowed[/]" if decision.allowed else "[red]not allowed[/]"
        out.print(f"{verdict} — policy version {decision.version_id or '-'}, region {decision.region}")
        for code in decision.reasons:
            out.print(f"  reason: {code}")
        for p, mechanism in decision.mechanisms.items():
            out.print(f"  {p}: {mechanism}")
    if not decision.allowed:
        raise typer.Exit(1)
