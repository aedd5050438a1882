"""The `notified.<version>` rows a build adds to its consent snapshot when the policy requires
notification (issue 15): a person notified in time of a version gets the row, so both compilers' plans
read the notice outbox through the one consent relation they already join."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from datalease.policy.model import Policy
from datalease.policy.notices import notified_key, notified_versions
from datalease.store.notice_deliveries import first_deliveries
from datalease.workspace import Workspace


def requires_notification(policy: Policy) -> bool:
    return any(v.notice is not None and v.notice.require_notification for v in policy.versions)


def notified_settings(ws: Workspace, policy: Policy, user_id: int, at: datetime) -> dict[str, bool]:
    """One person's `notified.<version>` settings as of `at` (for `decide`)."""
    if not requires_notification(policy):
        return {}
    with ws.session() as session:
        deliveries = first_deliveries(session, [user_id]).get(user_id, {})
    region = policy.region_of(ws.user_facts(str(user_id)).country)
    return {notified_key(v): True for v in notified_versions(policy, region, deliveries, at)}


def with_notifications(ws: Workspace, policy: Policy, table: pa.Table, at: datetime) -> pa.Table:
    """The snapshot plus a `notified.<version>` = true row per person notified in time."""
    if not requires_notification(policy):
        return table
    with ws.session() as session:
        deliveries = first_deliveries(session)
    if not deliveries:
        return table
    users = ws.lake.read("users").select(["user_id", "country"]).to_pylist()
    country = {int(u["user_id"]): str(u["country"]) for u in users}
    rows = [
        (user_id, notified_key(version))
        for user_id, by_version in deliveries.items()
        if user_id in country
        for version in sorted(notified_versions(policy, policy.region_of(country[user_id]), by_version, at))
    ]
    extra = pa.table(
        {
            "user_id": pa.array([r[0] for r in rows], pa.int64()),
            "key": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([True] * len(rows), pa.bool_()),
        }
    )
    return pa.concat_tables([table, extra.cast(table.schema)])
