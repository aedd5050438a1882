"""The notice outbox: the platform reports which person was notified of which policy version, when and
through which channel (`datalease notice delivered`, the platform API). `not_notified` reads it."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime

from datalease.consent.chain import canonical_time
from datalease.errors import UserError
from datalease.policy.vocabulary import revokes
from datalease.store.consent_events import ConsentEventStore
from datalease.store.notice_deliveries import add_delivery, first_deliveries
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    user_id: int
    version_id: str
    channel: str
    delivered_at: datetime
    first_delivered_at: datetime


def record_delivery(
    ws: Workspace, user: str, version_id: str, channel: str, delivered_at: datetime | None = None
) -> Delivery:
    """Record that `user` was shown the notice of `version_id` through `channel` at `delivered_at`."""
    policy = ws.require_policy()
    version = next((v for v in policy.versions if v.version_id == version_id), None)
    if version is None:
        raise UserError(
            f"VERSION {version_id!r}: expected a version of policy {policy.name} "
            f"({', '.join(v.version_id for v in policy.versions)})"
        )
    if version.notice is None:
        raise UserError(f"VERSION {version_id!r}: this version has no notice to deliver")
    if not CHANNEL_RE.match(channel):
        raise UserError(f"--channel {channel!r}: expected a short name such as email, in_app or push")
    now = utc_now()
    when = delivered_at or now
    if when > now:
        raise UserError(f"--at {when.isoformat()}: a delivery cannot be in the future")
    if when < version.notice.published:
        raise UserError(
            f"--at {when.isoformat()}: before the notice was published ({version.notice.published.date()})"
        )
    user_id = ws.user_facts(user).user_id
    with ws.write_session() as session, session.begin():
        delivery_id = add_delivery(session, user_id, version_id, channel, when, now)
        first = first_deliveries(session, [user_id])[user_id][version_id]
    return Delivery(delivery_id, user_id, version_id, channel, when, first)


@dataclass(frozen=True)
class NoticeCount:
    """Choices made after one notice (until the next was published)."""

    notice: str | None  # policy version whose notice was the latest published; None: before any notice
    sha256: str | None
    choices: int
    people: int
    given: int
    withdrawn: int


def choices_by_notice(ws: Workspace) -> list[NoticeCount]:
    """`consent by-notice`: every recorded choice, counted by the notice people had been shown: the
    notice recorded with the event where it has one (issue 15), else inferred from its time."""
    policy = ws.require_policy()
    notices = sorted(
        (
            (canonical_time(v.notice.published), v.version_id, v.notice.sha256)
            for v in policy.versions
            if v.notice
        ),
    )
    starts = [n[0] for n in notices]
    by_sha = {n[2]: slot for slot, n in enumerate(notices)}
    counts: dict[int, list[int]] = {}
    people: dict[int, set[int]] = {}
    store = ConsentEventStore(ws.engine)
    with store.read_transaction() as conn:
        for batch in store.iter_chain(conn):
            for row in batch:
                recorded = by_sha.get(row[11]) if row[11] is not None else None  # the notice shown
                # an event without a recorded notice: the latest published when it took effect (row[5]: at)
                slot = recorded if recorded is not None else bisect_right(starts, row[5]) - 1
                tally = counts.setdefault(slot, [0, 0, 0])
                withdrawn = revokes(row[3], bool(row[4]))
                tally[0] += 1
                tally[1 if not withdrawn else 2] += 1
                people.setdefault(slot, set()).add(int(row[2]))
    return [
        NoticeCount(
            notices[slot][1] if slot >= 0 else None,
            notices[slot][2] if slot >= 0 else None,
            tally[0],
            len(people[slot]),
            tally[1],
            tally[2],
        )
        for slot, tally in sorted(counts.items())
    ]
