"""`release build`: policy + consent snapshot + agreement → Delta tables + a ledger row.

All tables of a release become visible together: each table gets (at most) one Delta commit, and
only then does the ledger row that pins their versions commit (the `ledger_head` table's row, which
names the release, is committed inside that transaction: releases/ledger_head.py). Readers serve
pinned versions only, so a build killed at any moment leaves the previous release as the visible one;
the next build diffs against the tables' latest versions (including commits of the dead build) and
completes the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from datalease.consent.snapshot import consent_snapshot
from datalease.errors import UserError
from datalease.faults import crashpoint
from datalease.licensing.model import Agreement, describe_term
from datalease.licensing.registry import get_agreement
from datalease.licensing.rights import card_rights
from datalease.policy.load import load_policy
from datalease.policy.model import Policy
from datalease.policy.orders import with_orders
from datalease.releases import delta, ledger_head
from datalease.releases.card import CardFacts, TableCard, render_card
from datalease.releases.changes import Changes, Withheld, detect_changes, global_change, source_versions
from datalease.releases.diff import DiffSession
from datalease.releases.engines import ENGINES, ReleaseEngine, engine_name, open_spark
from datalease.releases.engines.duckdb import DuckDBRelease
from datalease.releases.keys import agreement_secret
from datalease.releases.model import KIND_BUILD, Release, ReleaseTable
from datalease.releases.notifications import with_notifications
from datalease.releases.plan import CategoryPlan, plan_release
from datalease.releases.support_tables import is_licensed_data
from datalease.store.licensing import get_agreement_record
from datalease.store.orders import list_orders
from datalease.store.policy_revisions import latest_policy_revision
from datalease.store.releases import latest_release, pin_table, record_release
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


@dataclass(frozen=True)
class BuildResult:
    release: Release
    full_reason: str | None  # why this was a full build (None: incremental)
    changed_inputs: int  # users + posts + engagement rows reconsidered by an incremental build
    card_path: Path


def build(
    ws: Workspace,
    agreement_id: str,
    *,
    at: datetime | None = None,
    full: bool = False,
    on_step: Callable[[str], None] | None = None,
    withheld: Callable[[int], Withheld] | None = None,
    engine: str | None = None,
) -> BuildResult:
    """Build the agreement's next release as of `at` (default now).

    `withheld`, asked under the share's lock just before the tables are written with the id of the
    release the build diffs against (0 for none), names the people, posts and engagement rows whose
    revocation the build's consent snapshot and lake may not know, so it must not (re)send their rows
    (`services.releases` passes the late revocation intents). `engine` (default DATALEASE_ENGINE) is
    `duckdb` or `spark`.
    """
    engine_choice = engine_name(engine or ws.settings.engine)  # before anything is read or written
    step = on_step or (lambda _message: None)
    started = time.perf_counter()
    when = at or utc_now()
    with ws.session() as session:
        revision = latest_policy_revision(session)
        if revision is None:
            raise UserError("no policy has been applied yet: run `datalease policy apply FILE` first")
        policy = load_policy(revision.source_text, f"policy revision {revision.id}")  # the same revision
        policy = with_orders(policy, list_orders(session))  # regulator orders (policy/orders.py)
        record = get_agreement_record(session, agreement_id)
        agreement = get_agreement(session, agreement_id, policy)
        previous = latest_release(session, agreement_id)
    if agreement.status != "active":
        raise UserError(
            f"agreement {agreement_id} is {agreement.status}: only active agreements are released"
        )
    if not agreement.in_term(when):
        raise UserError(
            f"agreement {agreement_id}: {when.isoformat()} is outside its term "
            f"({describe_term(agreement.term_start, agreement.term_end)})"
        )
    secret = agreement_secret(ws.master_key, agreement_id)
    versions = source_versions(ws.lake)
    snapshot = consent_snapshot(ws.engine, when)
    directory = ws.share_dir(agreement_id)
    full_reason = (
        "requested (--full)"
        if full
        else global_change(policy, previous, revision.id, record.content_sha256, when)
    )
    if full_reason is None:
        full_reason = _unfinished_work(directory, agreement, previous)

    with DiffSession(
        ws.lake,
        versions,
        with_notifications(ws, policy, snapshot.table, when),  # issue 15: not_notified
        threads=max(1, ws.settings.workers),
        memory_limit=ws.settings.engine_memory,
        temp_directory=ws.settings.resolved_home / "tmp",
    ) as session:
        changes = Changes(full_reason)
        if full_reason is None:
            assert previous is not None
            step(f"detecting changes since release {previous.release_id}")
            changes = detect_changes(ws.lake, ws.engine, policy, previous, versions, when, session.con)
            full_reason = changes.full_reason
        incremental = full_reason is None
        if incremental:
            session.register_changes(changes)
        plan = plan_release(
            policy, agreement, secret, when, incremental=incremental, dialect=ENGINES[engine_choice]
        )
        runner = _open_engine(
            ws, engine_choice, session, versions, snapshot.table, changes if incremental else None
        )
        try:
            runner.prepare(plan, step)
            commit_info = delta.commit_info(agreement_id, KIND_BUILD, as_of=when.isoformat())
            tables: list[ReleaseTable] = []
            excluded: dict[str, int] = {}
            sample_every = 1
            if not incremental:
                step("explaining what was withheld")
                excluded, sample_every = runner.excluded(plan.categories)
            with ws.share_lock(agreement_id):
                late = withheld(previous.release_id if previous else 0) if withheld else Withheld()
                runner.register_withheld(secret, late)
                for category_plan in plan.categories:
                    step(f"writing {category_plan.category}")
                    path = directory / category_plan.category
                    stats = runner.write_table(path, category_plan, commit_info)
                    tables.append(_release_table(path, category_plan, stats))
                    crashpoint(f"after_table:{category_plan.category}")
                release = Release(
                    release_id=0,
                    agreement_id=agreement_id,
                    built_at=utc_now(),
                    as_of=when,
                    policy_revision_id=revision.id,
                    policy_version=in_force.version_id if (in_force := policy.version_at(when)) else None,
                    agreement_sha256=record.content_sha256,
                    consent_watermark=snapshot.watermark_seq,
                    consent_head_hash=snapshot.watermark_hash,
                    source_versions=versions,
                    engine=runner.name,
                    full_build=not incremental,
                    duration_ms=int((time.perf_counter() - started) * 1000),
                    excluded=excluded,
                    excluded_sample_every=sample_every,
                    tables=tuple(tables),
                )
                crashpoint("before_ledger")
                with ws.write_session() as db, db.begin():
                    release_id = record_release(db, release)
                    head = ledger_head.append_head(
                        directory / ledger_head.TABLE,
                        ledger_head.head_row(release, release_id),
                        pinned=previous.table(ledger_head.TABLE) if previous else None,
                        commit_info=commit_info,
                    )
                    crashpoint("after_ledger_head")
                    pin_table(db, release_id, head)
                crashpoint("after_ledger")
        finally:
            runner.close()
    release = replace(release, release_id=release_id, tables=(*release.tables, head))
    card_path = write_card(ws, policy, agreement, release)
    return BuildResult(release, None if incremental else full_reason, changes.size, card_path)


def _unfinished_work(directory: Path, agreement: Agreement, previous: Release | None) -> str | None:
    """Why the tables cannot be trusted to hold exactly the previous release: then diff everything."""
    for category in agreement.categories:
        current = delta.table_version(directory / category)
        pinned = previous.table(category) if previous else None
        if current is None or pinned is None:
            return "a table of the share does not exist yet"
        if current != pinned.table_version:
            return f"an unfinished build left commits in {category} after release {previous.release_id if previous else 0}"
    return None


def _temp_dir(ws: Workspace) -> Path:
    directory = ws.settings.resolved_home / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _open_engine(
    ws: Workspace,
    name: str,
    session: DiffSession,
    versions: dict[str, int | None],
    consent: pa.Table,
    changes: Changes | None,
) -> ReleaseEngine:
    if name == "duckdb":
        return DuckDBRelease(session)
    return open_spark(
        master=ws.settings.spark_master,
        memory=ws.settings.spark_memory,
        lake=ws.lake,
        versions=versions,
        consent=consent,
        changes=changes,
        con=session.con,
        scratch_parent=_temp_dir(ws),
    )


def _release_table(path: Path, plan: CategoryPlan, stats: delta.CommitStats) -> ReleaseTable:
    return ReleaseTable(
        category=plan.category,
        table_version=stats.version,
        rows_total=delta.row_count(path),
        rows_added=stats.rows_added,
        rows_removed=stats.rows_removed,
        files_added=stats.files_added,
        files_removed=stats.files_removed,
    )


def write_card(ws: Workspace, policy: Policy, agreement: Agreement, release: Release) -> Path:
    directory = ws.share_dir(agreement.agreement_id)
    facts = CardFacts(
        agreement_id=agreement.agreement_id,
        partner=agreement.partner,
        release_id=release.release_id,
        built_at=release.built_at,
        as_of=release.as_of,
        policy_name=policy.name,
        policy_version=release.policy_version,
        consent_watermark=release.consent_watermark,
        consent_head_hash=release.consent_head_hash,
        purposes=agreement.purposes,
        regions_allowed=agreement.regions_allowed,
        regions_denied=agreement.regions_denied,
        content_window=(agreement.content_from, agreement.content_until),
        term=(agreement.term_start, agreement.term_end),
        pricing=f"{agreement.pricing.model} {agreement.pricing.amount} {agreement.pricing.currency}",
        deletion_sla_hours=agreement.deletion_sla_hours,
        tables=[
            TableCard(
                t.category,
                t.table_version,
                t.rows_total,
                list(agreement.columns(t.category)),
                t.rows_added,
                t.rows_removed,
            )
            for t in release.tables
            if is_licensed_data(t.category)
        ],
        excluded=release.excluded,
        excluded_sample_every=release.excluded_sample_every,
        hard_exclusions=_hard_exclusion_words(policy),
        rights=card_rights(agreement, [t.category for t in release.tables if is_licensed_data(t.category)]),
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "README.md"
    temporary = path.with_suffix(".md.tmp")
    temporary.write_text(render_card(facts), encoding="utf-8")
    temporary.replace(path)
    return path


def _hard_exclusion_words(policy: Policy) -> list[str]:
    rules = policy.hard_exclusions
    words = [f"people under {rules.minimum_age}"]
    if rules.exclude_unknown_age:
        words.append("people whose age is unknown")
    if rules.protected_accounts:
        words.append("protected accounts")
    words += [f"{state} accounts" for state in rules.account_states]
    if rules.deleted_content:
        words.append("deleted content")
    if rules.non_public_content:
        words.append("content that is not public")
    words.append("direct messages (never a category)")
    return words
