"""The `datalease` command: every operation, with Rich output and errors written for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from datalease.cli_arguments import check_argument_lengths
from datalease.config import Settings
from datalease.console import print_release
from datalease.errors import UserError
from datalease.platform.schemas import MAX_ID
from datalease.policy.decide import decide
from datalease.policy.diff import describe_rule, diff_policies, retroactive_changes
from datalease.policy.load import load_policy
from datalease.policy.model import Policy, RecordFacts, Scope
from datalease.policy.problems import MAX_DOCUMENT_BYTES, ProblemsError, decode_document
from datalease.policy.vocabulary import (
    CATEGORIES,
    PURPOSES,
    SettingKeyError,
    parse_setting_value,
    validate_setting_key,
)
from datalease.timeparse import EARLIEST_AT, LATEST_AT, TimeFormatError, parse_bounded_instant, utc_now
from datalease.workspace import Workspace

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="License platform data to AI partners, with consent."
)
policy_app = typer.Typer(no_args_is_help=True, help="Policy as code: validate, apply, show, diff.")
consent_app = typer.Typer(no_args_is_help=True, help="The consent ledger: record, show, verify.")
users_app = typer.Typer(no_args_is_help=True, help="Platform users.")
partner_app = typer.Typer(no_args_is_help=True, help="Partners who license data.")
agreement_app = typer.Typer(no_args_is_help=True, help="Licensing agreements: scope, fields, pricing, SLA.")
release_app = typer.Typer(no_args_is_help=True, help="Consent-filtered releases as Delta tables.")
report_app = typer.Typer(no_args_is_help=True, help="Reports: where a user's data went.")
revoke_app = typer.Typer(no_args_is_help=True, help="Revocations: withdraw rows from partners, forget lists.")
app.add_typer(partner_app, name="partner")
app.add_typer(agreement_app, name="agreement")
app.add_typer(release_app, name="release")
app.add_typer(revoke_app, name="revoke")
app.add_typer(report_app, name="report")
app.add_typer(policy_app, name="policy")
app.add_typer(consent_app, name="consent")
app.add_typer(users_app, name="users")
api_token_app = typer.Typer(
    no_args_is_help=True, help="The platform API token (operators, platform services)."
)
app.add_typer(api_token_app, name="api-token")

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

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


def workspace(home: Path | None) -> Workspace:
    return Workspace(Settings(home=home) if home else Settings())


def instant(text: str | None, option: str = "--at") -> datetime:
    if text is None:
        return utc_now()
    try:
        return parse_bounded_instant(text)
    except TimeFormatError as exc:
        raise UserError(f"{option}: {exc}") from exc


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


def parse_policy_file(path: Path) -> Policy:
    return load_policy(read_text(path), str(path))


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str, ensure_ascii=False))


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


# --- init / ingest / curate --------------------------------------------------------------------


@app.command()
def init(home: HomeOption = None) -> None:
    """Create the state directory, the lake and the store schema (safe to run twice)."""
    ws = workspace(home)
    ws.init()
    out.print(f"initialised {ws.settings.resolved_home}")


@app.command()
def ingest(
    table: Annotated[str, typer.Argument(help="users, posts, likes, reposts or bookmarks")],
    file: Annotated[Path, typer.Argument(help="A .parquet, .csv or .jsonl file")],
    rejects: Annotated[Path | None, typer.Option(help="Where to write rejected rows (JSONL).")] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the whole batch if any row is bad.")] = False,
    home: HomeOption = None,
) -> None:
    """Load a file into the source lake: good rows in one atomic commit, bad rows to a rejects file."""
    from datalease.platform.ingest import IngestError, ingest_file

    ws = workspace(home)
    ws.init()
    with progress(f"ingest {table}", None) as advance:
        try:
            result = ingest_file(
                ws.lake, table, file, rejects_path=rejects, strict=strict, on_progress=advance
            )
        except IngestError as exc:
            raise UserError(str(exc)) from exc
    if not result.accepted and not result.rejected:
        out.print(f"{table}: no rows in {file}; nothing written")
        return
    out.print(f"{table}: {result.accepted} accepted, {result.rejected} rejected")
    if result.rejected:
        out.print(f"rejected rows (row number and reason): {result.rejects_path}")


@app.command()
def curate(
    workers: Annotated[int | None, typer.Option(help="Processes (default: every core).")] = None,
    home: HomeOption = None,
) -> None:
    """Scrub PII and score sentiment of new or changed posts, once per post."""
    from datalease.platform.curate import curate as run_curation

    ws = workspace(home)
    with progress("curate posts", None) as advance:
        result = run_curation(ws.lake, workers=workers or ws.settings.workers, on_progress=advance)
    out.print(f"curated {result.curated}, unchanged {result.unchanged}, removed {result.removed}")


# --- policy --------------------------------------------------------------------------------------


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
    home: HomeOption = None,
) -> None:
    """Store a policy as the active revision. Versions already in force cannot be rewritten."""
    import hashlib

    from datalease.store.policy_revisions import save_policy_revision

    text = read_text(file)
    policy = load_policy(text, str(file))
    ws = workspace(home)
    ws.init()
    current = ws.active_policy()
    if current is not None:
        problems = retroactive_changes(current, policy, utc_now())
        if problems:
            raise UserError(
                f"{file}: "
                + "; ".join(problems)
                + " — history is immutable: add a new version with a later effective_from"
            )
        if not diff_policies(current, policy):
            out.print("no change: the active policy already says this")
            return
    with ws.write_session() as session, session.begin():
        revision = save_policy_revision(
            session, policy.name, text, hashlib.sha256(text.encode()).hexdigest(), actor
        )
    out.print(f"applied {file} as policy revision {revision}")
    if current is not None:
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


# --- consent -------------------------------------------------------------------------------------


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
    from datalease.consent.inputs import ConsentError

    try:
        validate_setting_key(key)
        flag = parse_setting_value(value)
    except SettingKeyError as exc:
        raise UserError(f"KEY {exc}") from exc
    except ValueError as exc:
        raise UserError(f"VALUE {exc}") from exc
    ws = workspace(home)
    facts = ws.user_facts(user)
    try:
        event = ws.ledger.record(
            facts.user_id,
            key,
            flag,
            at=instant(at) if at else None,
            source=source,
            actor=actor or f"user:{facts.user_id}",
        )
    except ConsentError as exc:
        raise UserError(str(exc)) from exc
    out.print(
        f"recorded #{event.seq}: user {facts.user_id} {key}={str(flag).lower()} at {event.at.isoformat()}"
    )


@consent_app.command("show")
def consent_show(
    user: str, at: AtOption = None, as_json: JsonOption = False, home: HomeOption = None
) -> None:
    """A user's effective settings as of T (unset keys follow the policy's default)."""
    ws = workspace(home)
    facts = ws.user_facts(user)
    when = instant(at)
    states = ws.ledger.state_at(facts.user_id, when)
    rows = [
        {
            "key": k,
            "value": s.value,
            "at": s.at.isoformat(),
            "source": s.source,
            "actor": s.actor,
            "seq": s.seq,
        }
        for k, s in sorted(states.items())
    ]
    if as_json:
        print_json({"user_id": facts.user_id, "at": when.isoformat(), "settings": rows})
        return
    table = Table(
        "key",
        "value",
        "since",
        "source",
        "actor",
        "#",
        title=f"user {facts.user_id} as of {when:%Y-%m-%d %H:%M} UTC",
    )
    for key, state in sorted(states.items()):
        table.add_row(
            key, str(state.value).lower(), state.at.isoformat(), state.source, state.actor, str(state.seq)
        )
    out.print(table if rows else "no explicit settings: the policy's defaults apply")


@consent_app.command("verify")
def consent_verify(home: HomeOption = None) -> None:
    """Recompute the hash chain; name the first edited, deleted or reordered event; then check the
    state derived from it (consent_current, the chain head and its digest)."""
    result = workspace(home).ledger.verify()
    if not result.ok and result.first_bad_seq is None:  # sound events, wrong derived state
        raise UserError(f"consent state is NOT intact ({result.checked} events verified): {result.problem}")
    if not result.ok:
        raise UserError(f"consent ledger is NOT intact after {result.checked} events: {result.problem}")
    out.print(f"consent ledger intact: {result.checked} events verified")


# --- decide --------------------------------------------------------------------------------------


@app.command("decide")
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
    ws = workspace(home)
    policy = ws.require_policy()
    if category not in policy.categories:
        raise UserError(f"--category {category!r}: expected one of {', '.join(policy.categories)}")
    for p in purpose:
        if p not in policy.purposes:
            raise UserError(f"--purpose {p!r}: expected one of {', '.join(policy.purposes)}")
    when = instant(at)
    owner = ws.user_facts(user)
    record = RecordFacts(category=category, owner=owner, created_at=min(when, utc_now()))
    if post is not None:
        record = post_record(ws, post, owner.user_id, when)
        if category != "posts":
            raise UserError("--post only applies to --category posts")
    decision = decide(
        policy, record, ws.consent_at(owner.user_id, when), Scope(tuple(purpose), (category,), partner), when
    )
    if as_json:
        print_json(
            {"user_id": owner.user_id, "category": category, "at": when.isoformat(), **asdict(decision)}
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


def post_record(ws: Workspace, post_id: int, owner_id: int, when: datetime) -> RecordFacts:
    import pyarrow.compute as pc

    posts = ws.lake.read("posts")
    rows = posts.filter(pc.equal(posts["post_id"], post_id)).to_pylist()
    if not rows:
        raise UserError(f"--post {post_id}: no such post in the platform lake")
    row = rows[0]
    if row["author_id"] != owner_id:
        raise UserError(f"--post {post_id}: written by user {row['author_id']}, not by --user")
    return RecordFacts(
        "posts", ws.user_facts(str(owner_id)), row["created_at"], row["deleted_at"], row["visibility"]
    )


# --- users ---------------------------------------------------------------------------------------


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
    ws = workspace(home)
    policy = ws.active_policy()
    if region is not None and policy is not None and region not in (*policy.regions, "*"):
        raise UserError(f"--region {region!r}: expected one of {', '.join((*policy.regions, '*'))}")
    rows = []
    for user in ws.lake.read("users").to_pylist():
        user_region = policy.region_of(user["country"]) if policy else "-"
        if region is None or user_region == region:
            rows.append({**user, "region": user_region})
            if limit and len(rows) >= limit:
                break
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


# --- partners and agreements ------------------------------------------------------------------


@partner_app.command("add")
def partner_add(
    name: str,
    display_name: Annotated[str | None, typer.Option(help="Name shown to people.")] = None,
    contact: Annotated[str | None, typer.Option(help="Contact address for deletion notices.")] = None,
    home: HomeOption = None,
) -> None:
    """Register a partner (a lowercase slug such as lumen-labs)."""
    from datalease.store.licensing import add_partner

    ws = workspace(home)
    ws.init()
    with ws.write_session() as session, session.begin():
        partner = add_partner(session, name, display_name, contact)
    out.print(f"partner {partner.name} added")


@partner_app.command("list")
def partner_list(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Every partner."""
    from datalease.store.licensing import list_partners

    with workspace(home).session() as session:
        partners = list_partners(session)
    if as_json:
        print_json([asdict(p) for p in partners])
        return
    table = Table("name", "display name", "contact", "since")
    for p in partners:
        table.add_row(p.name, p.display_name, p.contact or "", f"{p.created_at:%Y-%m-%d}")
    out.print(table)


@agreement_app.command("create")
def agreement_create(file: Path, home: HomeOption = None) -> None:
    """Validate an agreement file against the policy and the store, then save it."""
    from datalease.licensing.registry import create_agreement

    ws = workspace(home)
    ws.init()
    policy = ws.require_policy()
    with ws.write_session() as session, session.begin():
        record, created = create_agreement(session, read_text(file), str(file), policy=policy)
    verb = "created" if created else "already stored, unchanged:"
    out.print(f"agreement {verb} {record.agreement_id} for {record.partner} ({record.status})")


@agreement_app.command("list")
def agreement_list(
    partner: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Agreements with their partner, status and term."""
    from datalease.licensing.model import describe_term
    from datalease.store.licensing import list_agreements

    with workspace(home).session() as session:
        records = list_agreements(session, partner=partner)
    if as_json:
        print_json([{k: v for k, v in asdict(r).items() if k != "source_text"} for r in records])
        return
    table = Table("agreement", "partner", "status", "term")
    for r in records:
        table.add_row(r.agreement_id, r.partner, r.status, describe_term(r.term_start, r.term_end))
    out.print(table)


@agreement_app.command("show")
def agreement_show(agreement_id: str, as_json: JsonOption = False, home: HomeOption = None) -> None:
    """One agreement, as the platform reads it."""
    from datalease.licensing.model import agreement_to_dict
    from datalease.licensing.registry import get_agreement

    ws = workspace(home)
    with ws.session() as session:
        agreement = get_agreement(session, agreement_id, ws.require_policy())
    view = agreement_to_dict(agreement)
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        out.print(f"[bold]{key}[/]: {value}", highlight=False)


# --- releases ------------------------------------------------------------------------------------


@release_app.command("build")
def release_build(
    agreement_id: str,
    full: Annotated[
        bool, typer.Option("--full", help="Recompute everything instead of the changes.")
    ] = False,
    at: AtOption = None,
    home: HomeOption = None,
) -> None:
    """Build the agreement's next release: only what changed, unless --full or the policy changed."""
    from datalease.services.releases import build_release

    ws = workspace(home)
    result = build_release(
        ws, agreement_id, at=instant(at) if at else None, full=full, on_step=lambda m: err.print(m)
    )
    print_release(out, result.release, result.full_reason, result.changed_inputs)


@release_app.command("purge")
def release_purge(
    agreement_id: Annotated[
        str | None, typer.Argument(help="One agreement (default: every agreement).")
    ] = None,
    at: AtOption = None,
    home: HomeOption = None,
) -> None:
    """Delete from disk the files of superseded versions older than each agreement's retention window."""
    from datetime import timedelta

    from datalease.licensing.registry import get_agreement
    from datalease.sharing.purge import purge_table
    from datalease.store.licensing import list_agreements

    ws = workspace(home)
    policy = ws.require_policy()
    now = instant(at)
    with ws.session() as session:
        ids = [agreement_id] if agreement_id else [r.agreement_id for r in list_agreements(session)]
        agreements = [get_agreement(session, i, policy) for i in ids]
    for agreement in agreements:
        retention = timedelta(days=agreement.retention_days)
        for category in agreement.categories:
            path = ws.share_dir(agreement.agreement_id) / category
            cache = ws.sharing_cache_dir(agreement.agreement_id, category)
            result = purge_table(path, cache, retention=retention, now=now)
            out.print(
                f"{agreement.agreement_id}.{category}: {result.files} file(s), {result.bytes:,} bytes purged "
                f"(retention {agreement.retention_days} days)"
            )


@release_app.command("list")
def release_list(
    agreement: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Every release in the ledger."""
    from datalease.store.releases import list_releases

    with workspace(home).session() as session:
        releases = list_releases(session, agreement)
    if as_json:
        print_json([asdict(r) for r in releases])
        return
    table = Table("release", "agreement", "as of", "policy", "watermark", "kind", "tables", "ms")
    for r in releases:
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
    from datalease.store.releases import get_release

    with workspace(home).session() as session:
        release = get_release(session, release_id)
    if release is None:
        raise UserError(f"release {release_id}: no such release (see `datalease release list`)")
    if as_json:
        print_json(asdict(release))
        return
    print_release(out, release)


@partner_app.command("token")
def partner_token(
    partner: str,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the profile (JSON, mode 0600).")],
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime (90d, 12h, 30m) or an ISO-8601 instant; default 90d."),
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Server base URL written into the profile.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Issue PARTNER a bearer token and write the profile file the official delta-sharing client reads."""
    from datalease.sharing.profiles import issue_profile

    ws = workspace(home)
    issued = issue_profile(ws, partner, out_file, expires=expires, endpoint_base=endpoint)
    out.print(
        f"token {issued.token.token_id} for {partner}, expires {issued.token.expires_at:%Y-%m-%d %H:%M}Z; "
        f"profile written to {issued.path} (endpoint {issued.endpoint})"
    )


@partner_app.command("tokens")
def partner_tokens(
    partner: Annotated[str | None, typer.Argument()] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """A partner's tokens (never their secrets): created, expires, state."""
    from datalease.store.sharing import list_tokens

    now = utc_now()
    with workspace(home).session() as session:
        tokens = list_tokens(session, partner)
    if as_json:
        print_json([{**asdict(t), "state": t.state(now)} for t in tokens])
        return
    table = Table("token", "partner", "created", "expires", "state")
    for t in tokens:
        table.add_row(
            t.token_id,
            t.partner,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.expires_at:%Y-%m-%d %H:%M}",
            t.state(now),
        )
    out.print(table)


@partner_app.command("token-revoke")
def partner_token_revoke(token_id: str, home: HomeOption = None) -> None:
    """Revoke a token: its requests and the file URLs issued to it stop working."""
    from datalease.store.sharing import UnknownTokenError, revoke_token

    ws = workspace(home)
    try:
        with ws.write_session() as session, session.begin():
            token = revoke_token(session, token_id, utc_now())
    except UnknownTokenError as exc:
        raise UserError(str(exc)) from exc
    out.print(f"token {token.token_id} of {token.partner} revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S}Z")


@app.command("usage")
def usage(
    partner: Annotated[str | None, typer.Option(help="Only this partner.")] = None,
    month: Annotated[str | None, typer.Option(help="Only this month, YYYY-MM.")] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """What the sharing server served, per month, partner and agreement."""
    import re

    from datalease.store.sharing import usage_totals

    if month is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise UserError(f"--month {month!r}: expected YYYY-MM, e.g. 2026-11")
    with workspace(home).session() as session:
        totals = usage_totals(session, partner=partner, month=month)
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default 8000).")] = None,
    home: HomeOption = None,
) -> None:
    """Run the server: the Delta Sharing protocol under /delta-sharing."""
    import uvicorn

    from datalease.app import create_app

    settings = Settings(home=home) if home else Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    application = create_app(settings)
    from datalease.services.api_token import api_token, token_file

    api_token(application.state.workspace)
    err.print(f"platform API token (POST /api/v1/platform/events): {token_file(application.state.workspace)}")
    err.print(
        f"datalease serving {settings.resolved_home} on http://{settings.host}:{settings.port}/delta-sharing"
    )
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning")


@api_token_app.command("rotate")
def api_token_rotate(home: HomeOption = None) -> None:
    """Write a new platform API token to <home>/keys/api.token: the old one stops working at once, and
    so does every operator session signed in with it."""
    from datalease.services.api_token import rotate_api_token

    path = rotate_api_token(workspace(home))
    out.print(f"new platform API token in {path}", markup=False, highlight=False, soft_wrap=True)


# --- revocation ----------------------------------------------------------------------------------


@app.command("event")
def event_command(
    event_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="post_delete, like_delete, user_delete, user_protect, …")
    ],
    user: Annotated[int, typer.Argument(min=0, max=MAX_ID, help="The platform user_id the event is about.")],
    post: Annotated[
        int | None,
        typer.Option(
            "--post", min=0, max=MAX_ID, help="The post (post_delete, like/repost/bookmark_delete)."
        ),
    ] = None,
    country: Annotated[str | None, typer.Option(help="The new country (user_country_change).")] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="The sender's event id (retries are idempotent).")
    ] = None,
    at: AtOption = None,
    home: HomeOption = None,
) -> None:
    """Record a platform event; one that withdraws data queues its revocation in the same transaction."""
    from datalease.services.events import submit_events

    if at is not None:
        instant(at)  # the same range as every other --at; the event keeps the text as given
    raw: dict[str, Any] = {"type": event_type, "user_id": user}
    for name, value in (("post_id", post), ("country", country), ("id", event_id), ("at", at)):
        if value is not None:
            raw[name] = value
    (recorded,) = submit_events(workspace(home), [raw])
    verb = "recorded" if recorded.created else "already recorded"
    out.print(
        f"event {recorded.event_id} {verb}: {recorded.event.type} user {user}"
        + (f" post {post}" if post else "")
    )


@revoke_app.command("process")
def revoke_process(home: HomeOption = None) -> None:
    """Deliver every pending revocation now (the server's worker does this continuously)."""
    from datalease.revocation.worker import process_pending

    result = process_pending(workspace(home))
    out.print(
        f"{result.intents} intent(s) processed: {result.rows_removed} row(s) withdrawn from {result.agreements} "
        f"agreement(s), {result.forget_entries} forget entr{'y' if result.forget_entries == 1 else 'ies'}, "
        f"{result.duration_ms} ms"
    )
    for failure in result.failures:
        err.print(
            f"error: deliveries to {failure.agreement_id} failed (failing since "
            f"{failure.since:%Y-%m-%d %H:%M:%S}Z, {failure.attempts} attempts): {failure.error}",
            markup=False,
            highlight=False,
            style="red",
        )
    if result.failures:
        raise typer.Exit(1)


@app.command("compliance")
def compliance_command(as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Per agreement: forget entries pending, acknowledged and overdue; time to delete and to acknowledge."""
    from datalease.reporting.compliance import compliance

    ws = workspace(home)
    with ws.session() as session:
        report = compliance(session, utc_now())
    if as_json:
        print_json(asdict(report))
        return
    out.print(f"revocation intents waiting for delivery: {report.intents_waiting}")
    for failure in report.failures:
        out.print(
            f"[red]deliveries to {failure.agreement_id} failing since {failure.since:%Y-%m-%d %H:%M:%S}Z "
            f"({failure.attempts} attempts): {failure.error}[/red]",
            highlight=False,
        )
    table = Table(
        "agreement",
        "partner",
        "entries",
        "pending",
        "acked",
        "overdue",
        "oldest deadline",
        "to delete p50/p95",
        "to ack p50",
    )
    for a in report.agreements:
        table.add_row(
            a.agreement_id,
            a.partner,
            str(a.entries),
            str(a.pending),
            str(a.acknowledged),
            f"[red]{a.overdue}[/red]" if a.overdue else "0",
            f"{a.oldest_pending_deadline:%Y-%m-%d %H:%M}" if a.oldest_pending_deadline else "",
            _seconds_text(a.to_delete.p50, a.to_delete.p95),
            _seconds_text(a.to_ack.p50, None),
        )
    out.print(table)


def _seconds_text(p50: float | None, p95: float | None) -> str:
    if p50 is None:
        return ""
    return f"{p50:.1f}s" + (f" / {p95:.1f}s" if p95 is not None else "")


@report_app.command("user")
def report_user(user: str, as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Where USER's data went: per agreement, rows shared now, first/last release, revoked, forget acks."""
    from datalease.reporting.user_report import user_report

    ws = workspace(home)
    facts = ws.user_facts(user)
    reports = user_report(ws, facts.user_id)
    if as_json:
        print_json({"user_id": facts.user_id, "agreements": [asdict(r) for r in reports]})
        return
    if not reports:
        out.print(f"user {facts.user_id}: no agreement has released data yet")
    for r in reports:
        shared = ", ".join(f"{c} {n}" for c, n in r.rows_shared.items()) or "nothing"
        since = f"releases {r.first_release}–{r.last_release}" if r.first_release else "never included"
        out.print(
            f"[bold]{r.agreement_id}[/bold] ({r.partner}, {r.status}): shared now: {shared}; {since}; rows revoked {r.rows_revoked}"
        )
        for line in r.forget:
            ack = (
                f"acknowledged {line.acknowledged_at:%Y-%m-%d %H:%M}" if line.acknowledged_at else line.state
            )
            out.print(
                f"  forget {line.scope} ({line.reason_code}, {line.rows} rows) delivered {line.delivered_at:%Y-%m-%d %H:%M}, deadline {line.deadline:%Y-%m-%d %H:%M}: {ack}"
            )


# --- demo ----------------------------------------------------------------------------------------


@app.command()
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

    base_settings = Settings(home=home) if home else Settings()
    settings = base_settings.model_copy(update={"demo_login": True, **({"port": port} if port else {})})
    ws = Workspace(settings)
    run_demo(ws, users=users, posts_file=posts_file, seed=seed, console=out)
    if not serve_after:
        return
    import uvicorn

    from datalease.app import create_app
    from datalease.services.api_token import api_token

    api_token(ws)
    application = create_app(settings)
    base = f"http://{settings.host}:{settings.port}"
    out.print(f"user pages:       {base}/login  (pick a demo user)")
    out.print(
        f"operator console: {base}/login  (operator token in {settings.resolved_home / 'keys' / 'api.token'})"
    )
    out.print(f"Delta Sharing:    {base}/delta-sharing  (Ctrl-C stops the server)")
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning")


def main() -> None:
    try:
        check_argument_lengths(app, sys.argv[1:])
        code = app(standalone_mode=False)
    except ProblemsError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) found", style="red")
        sys.exit(2)
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, style="red", soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except Exception as exc:
        # Usage errors of the click that typer bundles: show the short usage message, exit 2.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
