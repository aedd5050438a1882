"""The notice outbox and `not_notified` end to end (issue 15), on a private copy of the small home whose
policy requires notification of version 2024-11.

Proves: `datalease notice delivered` (the real console script) records a delivery and refuses an
unknown version, a delivery before the publication and a bad channel, naming the argument; a person not
notified by the deadline keeps the previous default (reason `not_notified` from `datalease decide`'s
service), one notified in time does not; and a release built from the home withholds the posts of
people not notified (the bulk compiler reads the outbox through the consent snapshot).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from cli_harness import EXAMPLE_POLICY, expect, run
from small_home import AGREEMENT, SmallHome, settings

from datalease.services.decisions import decide_record
from datalease.services.releases import build_release
from datalease.store.policy_revisions import save_policy_revision
from datalease.workspace import Workspace

REQUIRED = EXAMPLE_POLICY.read_text(encoding="utf-8").replace(
    "require_notification: false", "require_notification: true"
)


def adults(ws: Workspace, country: str) -> list[int]:
    return [
        int(u["user_id"])
        for u in ws.lake.read("users").to_pylist()
        if u["country"] == country
        and u["account_state"] == "active"
        and u["birth_date"] is not None
        and u["birth_date"] < date(2000, 1, 1)
    ]


def test_deliveries_decide_who_keeps_the_previous_default(home: SmallHome) -> None:
    ws = Workspace(settings(home.home))
    with ws.session() as session, session.begin():
        save_policy_revision(
            session, "x-platform", REQUIRED, hashlib.sha256(REQUIRED.encode()).hexdigest(), "t"
        )
    told, untold, late = adults(ws, "US")[:3]
    done = expect(
        run(
            "notice",
            "delivered",
            str(told),
            "2024-11",
            "--channel",
            "email",
            "--at",
            "2024-10-16T00:00:00Z",
            home=home.home,
        ),
        0,
    )
    assert done.out_lines[0].startswith(
        f"notice 2024-11 delivered to user {told} by email at 2024-10-16T00:00:00"
    )
    expect(
        run(
            "notice",
            "delivered",
            str(late),
            "2024-11",
            "--channel",
            "in_app",
            "--at",
            "2024-11-01",
            home=home.home,
        ),
        0,
    )
    for args, message in (
        (("2099-01", "--channel", "email"), "VERSION '2099-01': expected a version of policy x-platform"),
        (("2023-09", "--channel", "email"), "VERSION '2023-09': this version has no notice to deliver"),
        (("2024-11", "--channel", "E mail"), "--channel 'E mail': expected a short name"),
        (
            ("2024-11", "--channel", "email", "--at", "2024-10-01"),
            "before the notice was published (2024-10-16)",
        ),
    ):
        refused = expect(run("notice", "delivered", str(untold), *args, home=home.home), 2)
        assert message in refused.err, refused.describe()
    at = datetime(2026, 5, 3, tzinfo=UTC)
    for user, kept in ((told, False), (untold, True), (late, True)):
        decision = decide_record(ws, str(user), "posts", ("third_party_sharing",), at=at).decision
        assert ("not_notified" in decision.reasons) is kept, (user, decision)

    result = build_release(ws, AGREEMENT, at=at, full=True)
    assert result.release.excluded.get("not_notified", 0) > 0, result.release.excluded
