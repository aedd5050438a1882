"""`datalease summary PARTNER --period …` (issue 18): the AI Act training-content summary's numbers are
the release ledger's — checked here against `list_releases` and the forget entries, independently —
and each names the releases it is summed over; Markdown and JSON say the same; a bad period or an
unknown partner is refused with what was expected."""

from __future__ import annotations

import json

from release_world import run_cli
from revocation_world import LUMEN, heavy_users

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release
from datalease.store.forget import forget_entries
from datalease.store.releases import list_releases
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def test_the_summary_numbers_are_the_release_ledgers(home: Workspace) -> None:
    ws = home
    for user in heavy_users(ws, LUMEN, 2):
        ws.ledger.record(user, MASTER_KEY, False)
    process_pending(ws)
    build_release(ws, LUMEN)
    year = f"{utc_now():%Y}"
    done = run_cli(ws.settings.resolved_home, "summary", "lumen-labs", "--period", year, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)

    with ws.session() as session:
        releases = [r for r in list_releases(session, LUMEN) if f"{r.built_at:%Y}" == year]
        entries = [e for e in forget_entries(session, agreement_id=LUMEN) if f"{e.delivered_at:%Y}" == year]
    assert len(releases) >= 3 and entries
    ids = [r.release_id for r in releases]
    [agreement] = document["agreements"]
    assert agreement["agreement"] == LUMEN and agreement["releases"] == ids
    assert document["release_ids"] == ids
    for category in ("posts", "reposts"):
        held = [r for r in releases if r.table(category) is not None]
        volume = agreement["volumes"][category]
        last = held[-1].table(category)
        assert last is not None
        assert volume["rows_at_end"] == {"value": last.rows_total, "release_ids": [held[-1].release_id]}
        added = sum(t.rows_added for r in held if (t := r.table(category)))
        removed = sum(t.rows_removed for r in held if (t := r.table(category)))
        assert volume["rows_added"] == {"value": added, "release_ids": [r.release_id for r in held]}
        assert volume["rows_removed"]["value"] == removed > 0
    honoured = agreement["opt_outs_and_reservations"]
    assert honoured["forget_entries_by_reason"]["opted_out"]["value"] == len(entries)
    assert set(honoured["forget_entries_by_reason"]["opted_out"]["release_ids"]) == {
        e.release_id for e in entries
    }
    assert honoured["rows_withdrawn"]["value"] == sum(e.rows for e in entries)
    full = [r for r in releases if r.full_build and r.excluded][-1]
    assert honoured["rows_withheld_by_reason"] == {
        code: {"value": rows, "release_ids": [full.release_id]}
        for code, rows in full.excluded.items()
        if rows
    }
    assert agreement["rights"]["cawg.ai_generative_training"] == "constrained"

    markdown = run_cli(ws.settings.resolved_home, "summary", "lumen-labs", "--period", year)
    assert markdown.returncode == 0, markdown.stderr
    posts = agreement["volumes"]["posts"]
    row = f"| posts | {posts['rows_at_end']['value']:,} (releases {posts['rows_at_end']['release_ids'][0]}) |"
    assert row in markdown.stdout, markdown.stdout
    assert "How opt-outs and reservations were honoured" in markdown.stdout

    empty = run_cli(ws.settings.resolved_home, "summary", "lumen-labs", "--period", "2001-Q1", "--json")
    assert json.loads(empty.stdout)["agreements"] == []
    bad = run_cli(ws.settings.resolved_home, "summary", "lumen-labs", "--period", "2026-13")
    assert bad.returncode == 2 and "period '2026-13': expected a year (2026), a quarter" in bad.stderr
    unknown = run_cli(ws.settings.resolved_home, "summary", "nobody", "--period", year)
    assert unknown.returncode == 2 and "partner 'nobody': no such partner" in unknown.stderr
