"""Platform events apply in event time, not arrival time (issue 11, item 1).

The account state, country and each post's deletion at any instant are what the events in effect at
that instant say, whatever order they arrived in: a late event never overrides a later one, a
future-dated event waits for its time (and the worker applies it then), and what is released follows.
The property test draws events with random times, delivers them in random order interleaved with
worker runs, and compares the lake with an oracle that simply sorts the events by event time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from release_oracle import check_release
from revocation_world import LUMEN, Base, copy_base, delta_rows, heavy_users, released_posts_of, user_key_of

from datalease.revocation.worker import apply_due_events, process_pending
from datalease.services.events import submit_events
from datalease.services.releases import build_release
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

ACCOUNT = {
    "user_protect": "protected",
    "user_unprotect": "active",
    "user_suspend": "suspended",
    "user_unsuspend": "active",
    "user_deactivate": "deactivated",
    "user_reactivate": "active",
}
COUNTRIES = ("US", "GB", "DE")


def _state(ws: Workspace, user: int) -> tuple[str, str]:
    users = {r["user_id"]: r for r in ws.lake.read("users").to_pylist()}
    return users[user]["account_state"], users[user]["country"]


def _deleted_at(ws: Workspace, post: int) -> datetime | None:
    posts = {r["post_id"]: r for r in ws.lake.read("posts").to_pylist()}
    value: datetime | None = posts[post]["deleted_at"]
    return value


def test_a_late_unprotect_dated_before_a_protect_leaves_the_account_protected(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, LUMEN, 1)[0]
    now = utc_now()
    submit_events(
        ws, [{"type": "user_protect", "user_id": user, "at": (now - timedelta(hours=1)).isoformat()}]
    )
    process_pending(ws)
    assert _state(ws, user)[0] == "protected"
    # Arrives later, but happened earlier: it changes nothing now.
    late = (now - timedelta(hours=2)).isoformat()
    submit_events(ws, [{"type": "user_unprotect", "user_id": user, "at": late}])
    process_pending(ws)
    assert _state(ws, user)[0] == "protected"
    build_release(ws, LUMEN)
    check_release(ws, LUMEN)
    key = user_key_of(ws, LUMEN, user)
    assert not [r for r in delta_rows(ws, LUMEN, "posts") if r["user_key"] == key]


def test_a_future_event_waits_for_its_time_and_the_worker_applies_it_then(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, LUMEN, 1)[0]
    now = utc_now()
    when = now + timedelta(hours=1)
    submit_events(ws, [{"type": "user_suspend", "user_id": user, "at": when.isoformat()}])
    process_pending(ws, now=now)
    assert _state(ws, user)[0] == "active", "a future-dated event was applied at once"
    key = user_key_of(ws, LUMEN, user)
    assert [r for r in delta_rows(ws, LUMEN, "posts") if r["user_key"] == key]
    process_pending(ws, now=when + timedelta(seconds=1))
    assert _state(ws, user)[0] == "suspended"
    assert not [r for r in delta_rows(ws, LUMEN, "posts") if r["user_key"] == key], "not withdrawn"


def test_a_late_post_delete_keeps_the_earliest_deletion_time(home: Workspace) -> None:
    ws = home
    user = heavy_users(ws, LUMEN, 1)[0]
    post = released_posts_of(ws, LUMEN, user)[0]
    now = utc_now()
    second, first = now - timedelta(minutes=10), now - timedelta(hours=3)
    submit_events(ws, [{"type": "post_delete", "user_id": user, "post_id": post, "at": second.isoformat()}])
    process_pending(ws)
    submit_events(
        ws,
        [{"type": "post_delete", "user_id": user, "post_id": post, "at": first.isoformat(), "id": "late-1"}],
    )
    process_pending(ws)
    assert _deleted_at(ws, post) == first


@dataclass(frozen=True)
class Drawn:
    type: str
    user: int
    offset_minutes: int  # event time relative to the test's `now` (negative: the past)
    country: str | None = None


def _events(users: list[int]) -> st.SearchStrategy[list[Drawn]]:
    account = st.builds(
        Drawn, st.sampled_from(sorted(ACCOUNT)), st.sampled_from(users), st.integers(-600, 120)
    )
    country = st.builds(
        Drawn,
        st.just("user_country_change"),
        st.sampled_from(users),
        st.integers(-600, 120),
        st.sampled_from(COUNTRIES),
    )
    return st.lists(account | country, min_size=1, max_size=10)


def _expected(
    events: list[tuple[int, Drawn]], initial: dict[int, tuple[str, str]], at: int
) -> dict[int, tuple[str, str]]:
    """The oracle: per user, fold the events in effect at minute `at` in event time (ties: arrival)."""
    state = dict(initial)
    for _arrival, event in sorted(
        (e for e in events if e[1].offset_minutes <= at), key=lambda e: (e[1].offset_minutes, e[0])
    ):
        account, country = state[event.user]
        if event.type in ACCOUNT:
            account = ACCOUNT[event.type]
        else:
            country = event.country or country
        state[event.user] = (account, country)
    return state


def test_events_in_any_arrival_order_give_the_event_time_state(
    base: Base, tmp_path_factory: pytest.TempPathFactory
) -> None:
    probe = copy_base(base, tmp_path_factory.mktemp("probe") / "home")
    users = heavy_users(probe, LUMEN, 3)
    probe.engine.dispose()
    examples = iter(range(10_000))

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        events=_events(users),
        order=st.randoms(use_true_random=False),
        cuts=st.lists(st.integers(0, 10), max_size=3),
    )
    def run(events: list[Drawn], order: Any, cuts: list[int]) -> None:
        ws = copy_base(base, tmp_path_factory.mktemp(f"world-{next(examples)}") / "home")
        try:
            initial = {u: _state(ws, u) for u in users}
            now = utc_now().replace(microsecond=0)
            arrivals = list(enumerate(events))
            order.shuffle(arrivals)
            batches = sorted(set(cuts))
            for position, (index, event) in enumerate(arrivals):
                raw: dict[str, Any] = {
                    "type": event.type,
                    "user_id": event.user,
                    "at": (now + timedelta(minutes=event.offset_minutes)).isoformat(),
                    "id": f"e{index}",
                }
                if event.country is not None:
                    raw["country"] = event.country
                submit_events(ws, [raw])
                if position in batches:  # the worker runs between arrivals
                    apply_due_events(ws, now)
            apply_due_events(ws, now)
            # Arrival position breaks ties of equal event time, as the recorded time does.
            ranked = [(position, event) for position, (_index, event) in enumerate(arrivals)]
            assert {u: _state(ws, u) for u in users} == _expected(ranked, initial, 0)
            later = now + timedelta(minutes=121)
            apply_due_events(ws, later)
            assert {u: _state(ws, u) for u in users} == _expected(ranked, initial, 121)
        finally:
            ws.engine.dispose()

    run()


@pytest.mark.parametrize("arrival", ["as listed", "reversed"])
def test_the_release_after_events_is_the_same_whatever_their_arrival_order(
    base: Base, tmp_path: Path, arrival: str
) -> None:
    ws = copy_base(base, tmp_path / arrival.replace(" ", "-"))
    users = heavy_users(ws, LUMEN, 2)
    now = utc_now()
    story = [
        {"type": "user_protect", "user_id": users[0], "at": (now - timedelta(hours=3)).isoformat()},
        {"type": "user_unprotect", "user_id": users[0], "at": (now - timedelta(hours=2)).isoformat()},
        {"type": "user_suspend", "user_id": users[1], "at": (now - timedelta(hours=2)).isoformat()},
        {"type": "user_unsuspend", "user_id": users[1], "at": (now - timedelta(hours=3)).isoformat()},
    ]
    for event in story if arrival == "as listed" else reversed(story):  # each order is late for someone
        submit_events(ws, [event])
        process_pending(ws)
    assert [_state(ws, u)[0] for u in users] == ["active", "suspended"]
    build_release(ws, LUMEN)
    check_release(ws, LUMEN)
