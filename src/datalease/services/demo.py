"""`datalease demo`: a whole platform on the embedded default, from nothing to released shares (a scripted
tour: it prints as it goes)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from datalease.consent.ledger import NewConsentEvent
from datalease.consent.snapshot import consent_snapshot
from datalease.console import print_release
from datalease.licensing.model import describe_term
from datalease.licensing.registry import create_agreement, get_agreement
from datalease.platform.curate import curate
from datalease.platform.generate import generate_platform
from datalease.platform.ingest import ingest_file
from datalease.platform.lake import register_delta
from datalease.policy.compile import compile_plan
from datalease.policy.model import Policy, Scope
from datalease.policy.resolve import outcome
from datalease.policy.vocabulary import MASTER_KEY, category_key, partner_block_key, purpose_key
from datalease.releases.changes import source_versions
from datalease.releases.diff import DiffSession
from datalease.releases.engines.duckdb import count_eligibility
from datalease.releases.keys import agreement_secret, key_sql
from datalease.services.releases import build_release
from datalease.sharing.profiles import issue_profile
from datalease.store.licensing import add_partner, list_partners
from datalease.store.policy_revisions import save_policy_revision
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

EXAMPLE_POLICY = "x-2024.yaml"
DEMO_PURPOSE = "train_ai_system.generative"
SOURCE_ORDER = ("users", "posts", "likes", "reposts", "bookmarks")
EXAMPLE_PARTNERS = {"lumen-labs": "Lumen Labs", "sentimetrics": "Sentimetrics"}
EXAMPLE_AGREEMENTS = ("lumen-genai.yaml", "sentimetrics-us.yaml")


def example_policy_text() -> str:
    return files("datalease.examples").joinpath(EXAMPLE_POLICY).read_text(encoding="utf-8")


def demo_consent_events(user_ids: list[int], seed: int) -> list[tuple[int, str, bool, datetime]]:
    """Deterministic settings changes: some users opt out, some opt in to bookmarks, a few block a partner."""
    rng = random.Random(seed)
    start = datetime(2024, 10, 20, tzinfo=UTC)
    events: list[tuple[int, str, bool, datetime]] = []
    for user_id in user_ids:
        when = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 400))
        roll = rng.random()
        if roll < 0.08:
            events.append((user_id, MASTER_KEY, False, when))
        elif roll < 0.11:
            events.append((user_id, category_key("posts"), False, when))
        elif roll < 0.17:
            events.append((user_id, category_key("bookmarks"), True, when))
        elif roll < 0.19:
            events.append((user_id, purpose_key(DEMO_PURPOSE), False, when))
        elif roll < 0.20:
            events.append((user_id, partner_block_key("sentimetrics"), True, when))
    return events


def run_demo(ws: Workspace, *, users: int, posts_file: Path | None, seed: int, console: Console) -> None:
    home = ws.settings.resolved_home
    console.rule(f"datalease demo — home {home}")
    ws.init()
    inputs = generate_platform(home / "demo-input", users=users, seed=seed, posts_file=posts_file)
    for table in SOURCE_ORDER:
        result = ingest_file(ws.lake, table, inputs[table])
        console.print(f"ingested {table}: {result.accepted} accepted, {result.rejected} rejected")
    curated = curate(ws.lake, workers=ws.settings.workers)
    console.print(f"curated posts: {curated.curated} new or changed, {curated.unchanged} unchanged")

    if ws.active_policy() is None:
        text = example_policy_text()
        with ws.write_session() as session, session.begin():
            save_policy_revision(
                session, "x-platform", text, hashlib.sha256(text.encode()).hexdigest(), "demo"
            )
    policy = ws.require_policy()
    if ws.ledger.count() == 0:
        user_ids = ws.lake.read("users").column("user_id").to_pylist()
        ws.ledger.record_many(
            [
                NewConsentEvent(u, k, v, at=at, source="user")
                for u, k, v, at in demo_consent_events(user_ids, seed)
            ]
        )
    print_summary(ws, policy, console)
    license_examples(ws, policy, console)


def license_examples(ws: Workspace, policy: Policy, console: Console) -> None:
    """The two example partners and agreements, and their first (or next) releases."""

    with ws.write_session() as session, session.begin():
        known = {p.name for p in list_partners(session)}
        for name, display in EXAMPLE_PARTNERS.items():
            if name not in known:
                add_partner(session, name, display)
        agreement_ids = []
        for file in EXAMPLE_AGREEMENTS:
            text = files("datalease.examples").joinpath("agreements", file).read_text(encoding="utf-8")
            record, _created = create_agreement(session, text, f"examples/agreements/{file}", policy=policy)
            agreement_ids.append(record.agreement_id)
    now = utc_now()
    shared: list[tuple[str, str, str]] = []
    for agreement_id in agreement_ids:
        with ws.session() as session:
            agreement = get_agreement(session, agreement_id, policy)
        if not agreement.in_term(now):
            term = describe_term(agreement.term_start, agreement.term_end)
            console.print(f"agreement {agreement_id} is outside its term ({term}): no release built")
            continue
        result = build_release(ws, agreement_id, at=now)
        print_release(console, result.release, result.full_reason, result.changed_inputs)
        shared.append((agreement.partner, agreement_id, result.release.tables[0].category))
    issue_demo_profiles(ws, shared, console)
    if shared:
        suggest_walkthrough(ws, shared[0], console)


def suggest_walkthrough(ws: Workspace, shared: tuple[str, str, str], console: Console) -> None:
    """Name a user whose posts went to the first partner, for docs/revocation.md's walk-through."""

    partner, agreement_id, table = shared
    secret = agreement_secret(ws.master_key, agreement_id)
    with duckdb.connect() as con:
        con.register("users", ws.lake.read("users"))
        register_delta(con, "shared", ws.share_dir(agreement_id) / table, partitioned=True)
        found = con.execute(
            f"SELECT u.user_id, count(*) AS n FROM (SELECT user_id, {key_sql(secret, 'user', 'user_id')} AS k "
            "FROM users) AS u JOIN shared AS s ON s.user_key = u.k GROUP BY u.user_id ORDER BY n DESC, u.user_id LIMIT 1"
        ).fetchall()
    if not found:
        return
    user_id, rows = found[0]
    profile = ws.settings.resolved_home / "profiles" / f"{partner}.share"
    console.print(
        f"revocation walk-through (docs/revocation.md), in another terminal while the server runs: "
        f"user {user_id} has {rows} {table} rows at {partner}:"
    )
    for line in (
        f".venv/bin/datalease consent set {user_id} share_with_partners false",
        f".venv/bin/python -c \"import delta_sharing as d; p='{profile}'; "
        f"print(d.load_table_changes_as_pandas(p+'#{agreement_id}.platform.{table}', starting_version=1)); "
        f"print(d.load_as_pandas(p+'#{agreement_id}.platform.forget'))\"",
    ):
        console.print("  " + line, markup=False, highlight=False, soft_wrap=True)


def issue_demo_profiles(ws: Workspace, shared: list[tuple[str, str, str]], console: Console) -> None:
    """A profile per partner with a release, and the one line that reads it with the official client."""

    profiles = ws.settings.resolved_home / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    for partner, agreement_id, table in shared:
        issued = issue_profile(ws, partner, profiles / f"{partner}.share", expires="30d", endpoint_base=None)
        console.print(f"partner profile for {partner}: {issued.path}")
        console.print(
            "  while the server runs (the demo ends with it up; later `.venv/bin/datalease serve`): "
            '.venv/bin/python -c "import delta_sharing; '
            f"print(delta_sharing.load_as_pandas('{issued.path}#{agreement_id}.platform.{table}').head())\"",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def print_summary(ws: Workspace, policy: Policy, console: Console) -> None:

    now = utc_now()
    version = policy.version_at(now)
    snapshot = consent_snapshot(ws.engine, now)
    users = ws.lake.read("users").to_pylist()
    opted_out = {
        row["user_id"] for row in snapshot.table.to_pylist() if row["key"] == MASTER_KEY and not row["value"]
    }
    by_region: Counter[tuple[str, str]] = Counter()
    out_by_region: Counter[str] = Counter()
    for user in users:
        region = policy.region_of(user["country"])
        mechanism = outcome(policy, version, region, "posts", DEMO_PURPOSE, now).mechanism if version else "-"
        by_region[(region, mechanism)] += 1
        out_by_region[region] += user["user_id"] in opted_out
    table = Table(
        "region",
        "mechanism for posts",
        "users",
        "opted out",
        title=f"users by region — policy {version.version_id if version else '-'}",
    )
    for (region, mechanism), count in sorted(by_region.items()):
        table.add_row(region, mechanism, str(count), str(out_by_region[region]))
    console.print(table)

    scope = Scope(purposes=(DEMO_PURPOSE,), categories=policy.categories)
    eligibility = Table(
        "category", "records", "eligible", "top reasons excluded", title=f"eligible now for {DEMO_PURPOSE}"
    )
    with DiffSession(ws.lake, source_versions(ws.lake), snapshot.table) as session:
        for category in policy.categories:
            counts = count_eligibility(session.con, compile_plan(policy, scope, category, now))
            top = sorted(((n, code) for code, n in counts.reasons.items() if n), reverse=True)[:3]
            eligibility.add_row(
                category, str(counts.total), str(counts.eligible), ", ".join(f"{code} {n}" for n, code in top)
            )
    console.print(eligibility)
