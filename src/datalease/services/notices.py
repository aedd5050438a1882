"""The notice outbox: the platform reports which person was notified of which policy version, when and
through which channel (`datalease notice delivered`, the platform API). `not_notified` reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from datalease.errors import UserError
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
