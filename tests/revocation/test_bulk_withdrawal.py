"""Bulk withdrawals on the revocation world (two released shares, lumen-genai and sentimetrics-us):

- an order halting the US: the dry run counts exactly the rows the delivery then deletes, nothing is
  recorded by the dry run; delivered in chunks of ≤ DATALEASE_BULK_CHUNK_ROWS rows (one pinned
  release per chunk), the shares hold exactly what the oracle (decide() with the order) allows, one
  `region` forget entry per agreement (reason regulator_order, deadline = request + SLA) whose rows
  add up to the rows deleted; a single opt-out recorded meanwhile is still delivered by its own worker;
- bad orders: located errors, exit ≠ 0, nothing recorded; lift twice;
- a termination: the share reaches zero rows through deletes, a whole-agreement forget entry, the
  share stays listed until the deadline and is gone after it; terminate twice / unknown → error;
- kill -9 of a real `datalease revoke bulk` at each crash point, then again: completes exactly once;
- the store's models of the new tables match migration 0012.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from deltalake import DeltaTable
from release_world import LUMEN, SENTIMETRICS, cli_command
from revocation_world import (
    RELEASED,
    TABLES,
    delta_rows,
    heavy_users,
    identity,
    oracle_now,
    strip_bucket,
    user_key_of,
)
from sqlalchemy import MetaData

from datalease.errors import UserError
from datalease.policy.problems import ProblemsError
from datalease.policy.vocabulary import MASTER_KEY
from datalease.reporting.compliance import compliance
from datalease.reporting.user_report import user_report
from datalease.revocation.bulk import process_bulk
from datalease.revocation.worker import process_pending
from datalease.services.orders import apply_order, end_agreement, lift, order
from datalease.services.policy import apply_policy
from datalease.sharing.tables import visible_shares
from datalease.store import Base, make_engine, upgrade
from datalease.store.bulk import list_withdrawals, progress_of
from datalease.store.forget import forget_entries
from datalease.store.licensing import get_agreement_record
from datalease.store.orders import list_orders
from datalease.store.releases import latest_release, list_releases
from datalease.workspace import Workspace

US_ORDER = """\
order: ftc-2026-01
issued_by: Federal Trade Commission
reference: FTC-2026-0042
regions: [US]
purposes: [train_ai_system]
effective: 2026-01-01
note: halt the use of US accounts' data for AI training
"""


def _counts(ws: Workspace, agreement: str) -> dict[str, Counter[tuple[object, ...]]]:
    return {t: Counter(identity(r, t) for r in delta_rows(ws, agreement, t)) for t in TABLES[agreement]}


def _expected(ws: Workspace, agreement: str) -> dict[str, Counter[tuple[object, ...]]]:
    oracle = oracle_now(ws, agreement)
    return {t: Counter(identity(strip_bucket(r), t) for r in oracle[t].elements()) for t in TABLES[agreement]}


def _nothing_recorded(ws: Workspace, before_releases: int) -> None:
    with ws.session() as session:
        assert list_orders(session) == []
        assert list_withdrawals(session) == []
        assert sum(len(list_releases(session, a)) for a in RELEASED) == before_releases


def _release_count(ws: Workspace) -> int:
    with ws.session() as session:
        return sum(len(list_releases(session, a)) for a in RELEASED)


CHUNK_ROWS = 20  # small enough that every agreement's withdrawal takes several chunks


def test_an_order_is_delivered_in_chunks_and_the_dry_run_said_so(
    home: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = home
    before = {a: _counts(ws, a) for a in RELEASED}
    releases_before = _release_count(ws)
    dry = apply_order(ws, US_ORDER, "us.yaml", dry_run=True)
    _nothing_recorded(ws, releases_before)
    predicted = {(r.agreement_id, r.category): r.rows for r in dry.impact}
    assert sum(predicted.values()) > 0, "the world must hold US rows for this test to mean anything"

    applied = apply_order(ws, US_ORDER, "us.yaml")
    assert applied.withdrawal is not None and applied.withdrawal.reason_code == "regulator_order"
    ws.settings.bulk_chunk_rows = CHUNK_ROWS
    result = process_bulk(ws)
    assert result.withdrawals == 1
    for agreement in RELEASED:
        after = _counts(ws, agreement)
        assert after == _expected(ws, agreement), agreement
        for table in TABLES[agreement]:
            gone = sum((before[agreement][table] - after[table]).values())
            assert gone == predicted.get((agreement, table), 0), (agreement, table)
    with ws.session() as session:
        entries = [e for e in forget_entries(session) if e.scope == "region"]
        progress = {p.agreement_id: p for p in progress_of(session, applied.withdrawal.withdrawal_id)}
        for agreement in RELEASED:
            mine = [e for e in entries if e.agreement_id == agreement]
            rows = sum(v for (a, _), v in predicted.items() if a == agreement)
            if rows == 0:
                continue
            assert len(mine) == 1 and mine[0].subject_key == "US"
            assert mine[0].reason_code == "regulator_order"
            assert mine[0].rows == rows == progress[agreement].rows_deleted
            assert progress[agreement].chunks >= -(-rows // CHUNK_ROWS // len(TABLES[agreement]))
            hours = 72 if agreement == LUMEN else 24
            assert mine[0].deadline == applied.withdrawal.requested_at + timedelta(hours=hours)
            # Every chunk is a pinned release of ≤ CHUNK_ROWS removed rows per table.
            for release in list_releases(session, agreement)[1:]:
                assert all(t.rows_removed <= CHUNK_ROWS for t in release.tables if t.category != "forget")
        assert max(p.chunks for p in progress.values()) >= 3, "the order must take several chunks"
    assert process_bulk(ws).withdrawals == 0  # nothing twice
    # People see why: a US user whose rows were shared is told; someone elsewhere is not.
    users = ws.lake.read("users").to_pylist()
    us = [u["user_id"] for u in users if u["country"] == "US"][:15]
    told = [w for u in us for r in user_report(ws, u) for w in r.why]
    assert any("regulator order in your region (reference FTC-2026-0042" in w for w in told)
    elsewhere = next(u["user_id"] for u in users if u["country"] != "US")
    assert not [w for r in user_report(ws, elsewhere) for w in r.why]
    found, deliveries = order(ws, "ftc-2026-01")
    assert found.reference == "FTC-2026-0042" and deliveries[0][0].completed_at is not None


def test_single_opt_outs_are_not_held_behind_a_pending_bulk_withdrawal(home: Workspace) -> None:
    ws = home
    apply_order(ws, US_ORDER, "us.yaml")  # pending, not delivered
    users = ws.lake.read("users").to_pylist()
    someone = next(u["user_id"] for u in users if u["country"] != "US")
    ws.ledger.record(someone, "share_with_partners", False)
    batch = process_pending(ws)
    assert batch.intents >= 1  # delivered while the bulk withdrawal still waits
    with ws.session() as session:
        assert list_withdrawals(session)[0].completed_at is None


BAD = [
    ("regions: [MARS]", "regions[0]"),
    ("countries: [XX]", "countries[0]"),
    ("categories: [pokes]", "categories[0]"),
    ("purposes: [mind_reading]", "purposes[0]"),
    ("until: 2025-01-01", "until"),
]


@pytest.mark.parametrize(("line", "field"), BAD)
def test_a_bad_order_names_the_field_and_records_nothing(home: Workspace, line: str, field: str) -> None:
    key = line.split(":")[0]
    text = "\n".join(x for x in US_ORDER.splitlines() if not x.startswith(key + ":")) + "\n" + line + "\n"
    releases = _release_count(home)
    with pytest.raises(ProblemsError) as caught:
        apply_order(home, text, "bad.yaml")
    located = [p for p in caught.value.problems if p.field == field]
    assert located and located[0].source == "bad.yaml" and located[0].line == len(text.splitlines())
    _nothing_recorded(home, releases)


def test_lift_twice_and_unknown_orders_are_errors(home: Workspace) -> None:
    apply_order(home, US_ORDER, "us.yaml")
    with pytest.raises(UserError, match="no order 'nope'"):
        lift(home, "nope")
    assert lift(home, "ftc-2026-01", dry_run=True).lifted_at is None
    assert lift(home, "ftc-2026-01").lifted_at is not None
    with pytest.raises(UserError, match="ftc-2026-01: already lifted"):
        lift(home, "ftc-2026-01")
    with pytest.raises(UserError, match="already recorded"):
        apply_order(home, US_ORDER, "us.yaml")


def test_a_termination_empties_the_share_then_closes_it(home: Workspace) -> None:
    ws = home
    with pytest.raises(UserError, match="no agreement 'nope'"):
        end_agreement(ws, "nope", "terminated", "fraud")
    dry = end_agreement(ws, SENTIMETRICS, "terminated", "contract ended", dry_run=True)
    held = {t: len(delta_rows(ws, SENTIMETRICS, t)) for t in TABLES[SENTIMETRICS]}
    with ws.session() as session:
        release = latest_release(session, SENTIMETRICS)
        assert release is not None
        pinned = {t.category: t.table_version for t in release.tables}
    assert {r.category: r.rows for r in dry.impact} == held and sum(held.values()) > 0
    ended = end_agreement(ws, SENTIMETRICS, "terminated", "contract ended")
    assert ended.withdrawal is not None and ended.withdrawal.closes_at is not None
    with pytest.raises(UserError, match="already terminated"):
        end_agreement(ws, SENTIMETRICS, "terminated", "again")
    process_bulk(ws)
    for table in TABLES[SENTIMETRICS]:
        assert delta_rows(ws, SENTIMETRICS, table) == []
        path = ws.share_dir(SENTIMETRICS) / table
        changes = DeltaTable(str(path)).load_cdf(starting_version=pinned[table] + 1).read_all()
        changes = pa.table(changes).to_pylist()
        deletes = [c for c in changes if c["_change_type"] == "delete"]
        assert len(deletes) == held[table]  # each row deleted once, in the change feed
    with ws.session() as session:
        entry = next(e for e in forget_entries(session) if e.agreement_id == SENTIMETRICS)
        assert (entry.scope, entry.subject_key, entry.reason_code) == (
            "agreement",
            SENTIMETRICS,
            "agreement_terminated",
        )
        assert entry.rows == sum(held.values())
        assert SENTIMETRICS in visible_shares(session, "sentimetrics")
        assert SENTIMETRICS not in visible_shares(
            session, "sentimetrics", ended.withdrawal.closes_at + timedelta(seconds=1)
        )
        assert LUMEN in visible_shares(session, "lumen-labs")  # untouched
        ended = {a.agreement_id: a.end_state for a in compliance(session, datetime.now(UTC)).agreements}
        assert ended[SENTIMETRICS] is not None and "emptied" in ended[SENTIMETRICS]
        assert "share open until" in ended[SENTIMETRICS] and ended.get(LUMEN) is None
    us = [u["user_id"] for u in ws.lake.read("users").to_pylist() if u["country"] == "US"][:15]
    told = [w for u in us for r in user_report(ws, u) if r.agreement_id == SENTIMETRICS for w in r.why]
    assert any("the agreement with sentimetrics ended on" in w for w in told)
    with ws.session() as session:
        assert latest_release(session, LUMEN) == list_releases(session, LUMEN)[-1]


def test_a_suspended_share_stays_readable_and_builds_stop(home: Workspace) -> None:
    end_agreement(home, LUMEN, "suspended", "audit")
    with home.session() as session:
        assert LUMEN in visible_shares(session, "lumen-labs")
    with pytest.raises(UserError, match="already suspended"):
        end_agreement(home, LUMEN, "suspended", "audit")


CRASH_POINTS = ("bulk:before_commit", "bulk:after_commit", "bulk:before_forget")


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_9_mid_withdrawal_completes_exactly_once(home: Workspace, point: str) -> None:
    ws = home
    before = {a: _counts(ws, a) for a in RELEASED}
    applied = apply_order(ws, US_ORDER, "us.yaml")
    assert applied.withdrawal is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATALEASE_")}
    env.update(
        {
            "DATALEASE_HOME": str(ws.settings.resolved_home),
            "DATALEASE_WORKERS": "1",
            "DATALEASE_BULK_CHUNK_ROWS": "5",
            "DATALEASE_CRASHPOINT": point,
        }
    )
    command = [*cli_command(), "revoke", "bulk"]
    killed = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    env.pop("DATALEASE_CRASHPOINT")
    again = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    ws.engine.dispose()
    with ws.session() as session:
        assert list_withdrawals(session)[0].completed_at is not None
        entries = [e for e in forget_entries(session) if e.scope == "region"]
        progress = {
            p.agreement_id: p.rows_deleted for p in progress_of(session, applied.withdrawal.withdrawal_id)
        }
        pinned = {a: latest_release(session, a) for a in RELEASED}
    for agreement in RELEASED:
        after = _counts(ws, agreement)
        assert after == _expected(ws, agreement)
        gone = sum(sum((before[agreement][t] - after[t]).values()) for t in TABLES[agreement])
        mine = [e for e in entries if e.agreement_id == agreement]
        if gone:
            assert len(mine) == 1 and mine[0].rows == gone == progress[agreement]
        forget = DeltaTable(str(ws.share_dir(agreement) / "forget")).to_pyarrow_table().to_pylist()
        assert len([r for r in forget if r["scope"] == "region"]) == len(mine)  # never twice
        release = pinned[agreement]
        assert release is not None
        for table in release.tables:  # no Delta commit that no release pins
            assert DeltaTable(str(ws.share_dir(agreement) / table.category)).version() == table.table_version


def test_models_of_the_new_tables_match_migration_0012(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    tables = {"regulator_orders", "bulk_withdrawals", "bulk_deliveries"}
    mine = MetaData()
    for name in sorted(tables | {"revocation_intents"}):  # the FK's target is copied, not compared
        Base.metadata.tables[name].to_metadata(mine)

    def only_mine(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in tables

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": False,
                "include_name": only_mine,
                "include_object": lambda _o, name, type_, _r, _c: only_mine(name, type_, None),
            },
        )
        assert compare_metadata(context, mine) == []
    engine.dispose()


def test_an_order_effective_later_waits_for_its_instant(home: Workspace) -> None:
    later = US_ORDER.replace(
        "effective: 2026-01-01", f"effective: {(datetime.now(UTC) + timedelta(days=30)).date()}"
    )
    applied = apply_order(home, later, "later.yaml")
    assert applied.withdrawal is not None
    assert process_bulk(home).withdrawals == 0
    later_still = datetime.now(UTC) + timedelta(days=31)  # the term ends are not this test's business
    assert process_bulk(home, now=later_still, term_ends=False).withdrawals == 1


def test_a_policy_revision_that_allows_less_is_a_bulk_withdrawal(home: Workspace) -> None:
    ws = home
    text = (Path(__file__).resolve().parents[2] / "examples" / "x-2024.yaml").read_text()
    starts = (datetime.now(UTC) + timedelta(seconds=90)).replace(microsecond=0)
    last_rules = text[text.rindex("    rules:") :]
    narrower = (
        text.rstrip("\n")
        + f"""
  - id: "2026-us-halt"
    effective_from: {starts.isoformat()}
    note: the platform stops licensing US accounts' data
"""
        + last_rules.rstrip("\n")
        + """
      - region: US
        mechanism: excluded
"""
    )
    releases = _release_count(ws)
    dry = apply_policy(ws, narrower, "narrower.yaml", dry_run=True)
    assert dry.revision is None and _release_count(ws) == releases
    with ws.session() as session:
        assert list_withdrawals(session) == []
    predicted = {(r.agreement_id, r.category): r.rows for r in dry.impact}
    assert predicted.get((SENTIMETRICS, "posts"), 0) > 0
    before = {a: _counts(ws, a) for a in RELEASED}
    applied = apply_policy(ws, narrower, "narrower.yaml")
    assert applied.withdrawal is not None and applied.withdrawal.reason_code == "policy_changed"
    assert applied.withdrawal.requested_at == starts
    assert process_bulk(ws).withdrawals == 0  # not in force yet
    after_start = starts + timedelta(seconds=1)
    assert process_bulk(ws, now=after_start).withdrawals == 1
    for agreement in RELEASED:
        after = _counts(ws, agreement)
        for table in TABLES[agreement]:
            gone = sum((before[agreement][table] - after[table]).values())
            assert gone == predicted.get((agreement, table), 0), (agreement, table)
    assert all(not c for c in _counts(ws, SENTIMETRICS).values())  # a US-only share
    with ws.session() as session:
        entry = next(
            e for e in forget_entries(session) if e.scope == "policy" and e.agreement_id == SENTIMETRICS
        )
    assert entry.reason_code == "policy_changed" and entry.rows == sum(
        v for (a, _), v in predicted.items() if a == SENTIMETRICS
    )


def test_a_term_end_passing_empties_the_share_like_a_termination(home: Workspace) -> None:
    ws = home
    with ws.session() as session:
        term_end = get_agreement_record(session, LUMEN).term_end
    assert process_bulk(ws, now=term_end - timedelta(seconds=1)).withdrawals == 0
    result = process_bulk(ws, now=term_end + timedelta(seconds=1))
    assert result.withdrawals == 1 and result.rows_removed > 0
    assert all(not c for c in _counts(ws, LUMEN).values())
    assert any(_counts(ws, SENTIMETRICS).values())  # its term runs on
    with ws.session() as session:
        entry = next(e for e in forget_entries(session) if e.agreement_id == LUMEN)
        assert (entry.scope, entry.reason_code, entry.rows) == (
            "agreement",
            "term_ended",
            result.rows_removed,
        )
        assert entry.deadline == term_end + timedelta(hours=72)
        assert LUMEN in visible_shares(session, "lumen-labs", term_end + timedelta(hours=71))
        assert LUMEN not in visible_shares(session, "lumen-labs", term_end + timedelta(hours=72))
    assert process_bulk(ws, now=term_end + timedelta(seconds=2)).withdrawals == 0  # recorded once


def test_a_single_opt_out_goes_between_two_chunks_of_a_running_withdrawal(home: Workspace) -> None:
    """The interleaving rule, as `datalease serve` runs it (the bulk worker and the revocation worker
    on two threads of one process): while the bulk worker empties lumen's share chunk by chunk, a
    single opt-out's batch waits for one chunk at most — its commit lands between two of the
    withdrawal's chunks — and both complete exactly once."""
    ws = home
    posts = DeltaTable(str(ws.share_dir(LUMEN) / "posts")).to_pyarrow_table(columns=["bucket"])
    last = max(posts.column("bucket").to_pylist())  # the withdrawal reaches this bucket last
    user = next(u for u in heavy_users(ws, LUMEN, 200) if user_key_of(ws, LUMEN, u)[0] == last)
    end_agreement(ws, LUMEN, "terminated", "contract ended")
    bulk_ws = Workspace(ws.settings.model_copy(update={"bulk_chunk_rows": max(1, posts.num_rows // 40)}))
    outcome: list[object] = []

    def bulk() -> None:
        try:
            outcome.append(process_bulk(bulk_ws))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=bulk)
    worker.start()
    try:
        waited = threading.Event()
        while _chunks(ws, LUMEN) < 2:
            assert worker.is_alive(), f"the withdrawal ended before the test could interleave: {outcome}"
            waited.wait(0.02)  # poll until the withdrawal is under way
        ws.ledger.record(user, MASTER_KEY, False)
        single = process_pending(ws)
    finally:
        worker.join(timeout=600)
        bulk_ws.engine.dispose()
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    assert single.rows_removed > 0
    history = sorted(DeltaTable(str(ws.share_dir(LUMEN) / "posts")).history(), key=lambda h: h["version"])
    batches = [str(h.get("datalease.batch", "")) for h in history]
    mine = [n for n, b in enumerate(batches) if b.startswith("intents")]
    assert len(mine) == 1, batches
    assert any(b.startswith("bulk") for b in batches[: mine[0]]), batches
    assert any(b.startswith("bulk") for b in batches[mine[0] + 1 :]), batches
    with ws.session() as session:
        assert list_withdrawals(session)[0].completed_at is not None
        entries = forget_entries(session)
    user_entries = [e for e in entries if e.scope == "user" and e.agreement_id == LUMEN]
    assert [e.subject_key for e in user_entries] == [user_key_of(ws, LUMEN, user)]  # once
    assert [e.scope for e in entries if e.agreement_id == LUMEN and e.scope == "agreement"] == ["agreement"]
    assert all(sum(_counts(ws, LUMEN)[t].values()) == 0 for t in TABLES[LUMEN])


def _chunks(ws: Workspace, agreement: str) -> int:
    with ws.session() as session:
        withdrawals = list_withdrawals(session)
        if not withdrawals:
            return 0
        progress = progress_of(session, withdrawals[0].withdrawal_id)
    return sum(p.chunks for p in progress if p.agreement_id == agreement)
