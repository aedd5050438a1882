"""Platform events beyond the state machine's: a country change into an excluded region withdraws the
person's rows, and an account restored (unprotect, unsuspend, reactivate) comes back with the next
build."""

from __future__ import annotations

from release_world import LUMEN, SENTIMETRICS
from revocation_world import as_rows, delta_rows, heavy_users, oracle_now, user_key_of

from datalease.revocation.worker import process_pending
from datalease.services.events import submit_events
from datalease.services.releases import build_release
from datalease.store.forget import forget_entries
from datalease.workspace import Workspace


def rows_of(ws: Workspace, agreement: str, table: str, user: int) -> int:
    key = user_key_of(ws, agreement, user)
    return sum(1 for r in delta_rows(ws, agreement, table) if r["user_key"] == key)


def account_state(ws: Workspace, user: int) -> str:
    users = ws.lake.read("users").to_pylist()
    state: str = next(u["account_state"] for u in users if u["user_id"] == user)
    return state


def test_moving_into_an_excluded_region_withdraws_the_persons_rows(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, LUMEN, 1, also=SENTIMETRICS)[0]
    submit_events(ws, [{"type": "user_country_change", "user_id": user, "country": "de"}])
    result = process_pending(ws)
    assert result.intents == 1 and result.agreements == 2
    for agreement in (LUMEN, SENTIMETRICS):  # lumen denies the EEA, sentimetrics takes the US only
        assert rows_of(ws, agreement, "posts", user) == 0
        allowed = oracle_now(ws, agreement)
        for table in allowed:
            assert as_rows(delta_rows(ws, agreement, table)) == allowed[table], f"{agreement}.{table}"
        with ws.session() as session:
            entries = forget_entries(
                session, agreement_id=agreement, subject_keys=[user_key_of(ws, agreement, user)]
            )
        assert [(e.scope, e.reason_code) for e in entries] == [("user", "country_changed")]


def test_an_account_restored_is_released_again_by_the_next_build(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, LUMEN, 1)[0]
    before = rows_of(ws, LUMEN, "posts", user)
    assert before > 0
    submit_events(ws, [{"type": "user_protect", "user_id": user}])
    process_pending(ws)
    assert rows_of(ws, LUMEN, "posts", user) == 0
    assert account_state(ws, user) == "protected"
    submit_events(ws, [{"type": "user_unprotect", "user_id": user}])
    process_pending(ws)
    build_release(ws, LUMEN)
    assert account_state(ws, user) == "active"
    assert rows_of(ws, LUMEN, "posts", user) == before
