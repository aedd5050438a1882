"""The share's `ledger_head` table as the partner's witness of the consent ledger (issue 15, item 5),
end to end: a real `datalease serve`, the official `delta-sharing` client and `partnerkit sync`.

Proves: after two builds the share lists `ledger_head`, which the official client reads in both
response formats as one row per build holding the consent head (seq, hash) the ledger had at that
build; `partnerkit sync` keeps it as `ledger_head.parquet`. The platform's database is then put back
to a copy taken before the last events (the chain head and every release row recording it go with
them): `consent verify` alone passes, but `consent verify --anchor` with the partner's copy names the
truncated tail (exit 2); once other events take the deleted places, it names the rewritten tail.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import delta_sharing
import pandas as pd
from cli_harness import expect, run
from sharing_world import Server
from small_home import AGREEMENT, RELEASED_AT, SCHEMA, SmallHome, settings

from datalease.policy.vocabulary import MASTER_KEY
from datalease.services.releases import build_release
from datalease.workspace import Workspace
from partnerkit.profile import load_profile
from partnerkit.sync import sync

HEAD_URL = f"{AGREEMENT}.{SCHEMA}.ledger_head"


def record_two(ws: Workspace, value: bool, hours: int) -> None:
    users = ws.lake.read("users")["user_id"].to_pylist()[:2]
    for n, user in enumerate(users):
        ws.ledger.record(int(user), MASTER_KEY, value, at=RELEASED_AT + timedelta(hours=hours, minutes=n))


def restore_backup(backup: Path, database: Path) -> None:
    """Put the database file back as the backup has it (a write-ahead log left beside it would be
    replayed onto the restored file)."""
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    shutil.copy(backup, database)


def test_the_partners_copy_of_ledger_head_catches_a_truncated_then_rewritten_tail(
    home: SmallHome, real_server: Callable[..., Server], tmp_path: Path
) -> None:
    ws = Workspace(settings(home.home))
    first_seq, first_hash = ws.ledger.head()
    ws.engine.dispose()
    shutil.copy(home.home / "datalease.db", tmp_path / "before.db")  # the backup an operator restores
    record_two(ws, True, hours=1)
    second = build_release(ws, AGREEMENT, at=RELEASED_AT + timedelta(hours=2)).release
    head_seq, head_hash = ws.ledger.head()
    assert head_seq == first_seq + 2 and (second.consent_watermark, second.consent_head_hash) == (
        head_seq,
        head_hash,
    )
    ws.engine.dispose()

    server = real_server()
    profile = tmp_path / "lumen.share"
    profile.write_text(
        json.dumps(
            {"shareCredentialsVersion": 1, "endpoint": server.endpoint, "bearerToken": home.partner_bearer}
        )
    )
    client = delta_sharing.SharingClient(str(profile))
    assert "ledger_head" in {t.name for t in client.list_all_tables()}
    for delta_format in (False, True):
        frame = delta_sharing.load_as_pandas(f"{profile}#{HEAD_URL}", use_delta_format=delta_format)
        rows = frame.sort_values("release_id").to_dict("records")
        assert [(r["kind"], r["consent_seq"], r["consent_hash"]) for r in rows] == [
            ("build", first_seq, first_hash),
            ("build", head_seq, head_hash),
        ], delta_format
        assert rows[1]["release_id"] == second.release_id
        assert pd.Timestamp(rows[1]["as_of"]) == pd.Timestamp(RELEASED_AT + timedelta(hours=2))
        assert json.loads(rows[1]["table_versions"]) == {
            t.category: t.table_version for t in second.tables if t.category in ("posts", "reposts")
        }
    partner = tmp_path / "partner"
    result = sync(partner, load_profile(profile), f"{AGREEMENT}.{SCHEMA}.posts")
    assert result.witness is not None and (result.witness.rows, result.witness.conflicts) == (2, ())
    assert "ledger_head: 2 releases witnessed (+2)" in result.describe()
    server.stop()

    expect(run("consent", "verify", "--anchor", str(partner), home=home.home), 0)
    restore_backup(tmp_path / "before.db", home.home / "datalease.db")  # the last two events are gone
    assert expect(run("consent", "verify", home=home.home), 0).out.startswith("consent ledger intact")
    truncated = expect(run("consent", "verify", "--anchor", str(partner), home=home.home), 2)
    assert (
        f"truncated: {partner} (ledger_head, release {second.release_id}) records event #{head_seq} but the "
        f"ledger ends at #{first_seq}: events #{first_seq + 1}..#{head_seq} were deleted"
    ) in truncated.err, truncated.describe()

    ws = Workspace(settings(home.home))
    record_two(ws, False, hours=3)  # other events take #first+1 and #first+2
    ws.engine.dispose()
    rewritten = expect(
        run("consent", "verify", "--anchor", str(partner / "ledger_head.parquet"), home=home.home), 2
    )
    assert f"rewritten: event #{head_seq} has hash " in rewritten.err, rewritten.describe()
    assert f"recorded {head_hash}" in rewritten.err
    assert "truncated" not in rewritten.err  # the first release's witness still holds
