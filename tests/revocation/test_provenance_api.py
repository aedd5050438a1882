"""Provenance through the partner API of a running `datalease serve` (issue 18), with the partner's
Delta Sharing bearer token:

- lineage: a partner declares which model was trained on which release; a release it never received
  (another partner's, or none) is refused and nothing is recorded;
- acknowledgements per model: naming an undeclared model is refused (nothing recorded); once every
  model due for an entry answered (retrained / certificate) the entry is acknowledged, and the
  person's page line says "your data is in N declared models; M … retrained …, K due by …";
- overdue models list the partner on the operator's view, and block the next build when the agreement
  says `block_release_when_overdue: true`;
- attestation: recorded with time and signer; refused for an unknown agreement or another partner's;
  activating an agreement needs one, and a lapsed one makes `release build` refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import requests
from revocation_world import (
    FIVE,
    FIVE_AGREEMENT,
    FIVE_PARTNER,
    LUMEN,
    SENTIMETRICS,
    Served,
    heavy_users,
    user_key_of,
)

from datalease.errors import UserError
from datalease.licensing.model import LicensingError
from datalease.licensing.registry import create_agreement, set_agreement_status
from datalease.licensing.rights import PROHIBITED_USE_CODES
from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import process_pending
from datalease.services.provenance import (
    attestation_state,
    check_build_allowed,
    declare_lineage,
    models_lines,
    partners_by_overdue,
    record_attestation,
)
from datalease.services.releases import build_release
from datalease.store.forget import forget_entries
from datalease.store.licensing import add_partner
from datalease.store.releases import latest_release
from datalease.timeparse import utc_now
from datalease.web.sessions import user_token
from datalease.workspace import Workspace


def _release(ws: Workspace, agreement: str) -> int:
    with ws.session() as session:
        found = latest_release(session, agreement)
    assert found is not None
    return found.release_id


def _entries_of(ws: Workspace, agreement: str, user: int) -> list[str]:
    with ws.session() as session:
        found = forget_entries(
            session, agreement_id=agreement, subject_keys=[user_key_of(ws, agreement, user)]
        )
    return [e.forget_id for e in found]


def test_lineage_and_per_model_acknowledgements_through_the_partner_api(
    home: Workspace, server: Callable[..., Served]
) -> None:
    ws = home
    served = server(ws.settings.resolved_home)
    lumen = served.partner("lumen-labs")
    mine, theirs = _release(ws, LUMEN), _release(ws, SENTIMETRICS)
    assert lumen.api("GET", "/api/v1/partner/lineage").json() == {"items": []}

    for release in (theirs, 999_999):
        refused = lumen.api(
            "POST",
            "/api/v1/partner/lineage",
            json={
                "declarations": [
                    {"model_id": "m-1", "release_id": mine},
                    {"model_id": "m-x", "release_id": release},
                ]
            },
        )
        assert refused.status_code == 400, refused.text
        assert f"lumen-labs never received release {release}" in refused.json()["message"]
    assert lumen.api("GET", "/api/v1/partner/lineage").json() == {"items": []}, "nothing recorded"
    body = {
        "declarations": [
            {"model_id": "lumen-7b-v1", "release_id": mine},
            {"model_id": "lumen-1b-v1", "release_id": mine},
        ]
    }
    declared = lumen.api("POST", "/api/v1/partner/lineage", json=body)
    assert declared.json() == {"declared": 2, "already_declared": 0}, declared.text
    assert lumen.api("POST", "/api/v1/partner/lineage", json=body).json()["already_declared"] == 2
    items = lumen.api("GET", "/api/v1/partner/lineage").json()["items"]
    assert sorted((i["model_id"], i["share"], i["release_id"]) for i in items) == [
        ("lumen-1b-v1", LUMEN, mine),
        ("lumen-7b-v1", LUMEN, mine),
    ]

    user = heavy_users(ws, LUMEN, 1)[0]
    ws.ledger.record(user, MASTER_KEY, False)
    process_pending(ws)
    [entry] = _entries_of(ws, LUMEN, user)
    [line] = [x for x in models_lines(ws, user) if x.agreement_id == LUMEN]
    assert line.declared == ["lumen-1b-v1", "lumen-7b-v1"] and line.due == line.declared and not line.answered
    assert "your data is in 2 declared models; 2 are due by" in line.sentence()

    undeclared = lumen.api(
        "POST",
        "/api/v1/partner/forget/ack-models",
        json={
            "ids": [entry],
            "models": [
                {"model_id": "lumen-7b-v1", "outcome": "retrained"},
                {"model_id": "ghost-v9", "outcome": "retrained"},
            ],
        },
    )
    assert (
        undeclared.status_code == 400 and "'ghost-v9' is not a model lumen-labs declared" in undeclared.text
    )
    half = lumen.api(
        "POST",
        "/api/v1/partner/forget/ack-models",
        json={"ids": [entry], "models": [{"model_id": "lumen-7b-v1", "outcome": "retrained"}]},
    )
    assert half.json() == {"models_recorded": 1, "acknowledged": 0, "still_due": {entry: ["lumen-1b-v1"]}}
    no_certificate = lumen.api(
        "POST",
        "/api/v1/partner/forget/ack-models",
        json={"ids": [entry], "models": [{"model_id": "lumen-1b-v1", "outcome": "certificate"}]},
    )
    assert no_certificate.status_code == 400 and "models[0].certificate" in no_certificate.text
    done = lumen.api(
        "POST",
        "/api/v1/partner/forget/ack-models",
        json={
            "ids": [entry],
            "models": [{"model_id": "lumen-1b-v1", "outcome": "certificate", "certificate": "sisa:shard-3"}],
        },
    )
    assert done.json() == {"models_recorded": 1, "acknowledged": 1, "still_due": {}}, done.text
    [line] = [x for x in models_lines(ws, user) if x.agreement_id == LUMEN]
    assert line.answered == {"lumen-7b-v1": "retrained", "lumen-1b-v1": "certificate: sisa:shard-3"}
    assert line.sentence().startswith(
        "your data is in 2 declared models; 2 have been retrained without it or certified"
    )
    # The person's "Where my data went" page says it, per partner.
    browser = requests.Session()
    signed_in = browser.get(
        served.base + "/login", params={"token": user_token(ws.master_key, user)}, timeout=30
    )
    assert signed_in.status_code == 200, signed_in.text
    page = browser.get(served.base + f"/users/{user}/data", timeout=30).text
    said = page.split(f'data-agreement="{LUMEN}">', 1)[1].split("</p>", 1)[0]
    assert said.startswith("Models: your data is in 2 declared models; 2 have been retrained"), said
    assert "lumen-1b-v1 (certificate: sisa:shard-3)" in said
    pending = lumen.api("GET", "/api/v1/partner/forget", params={"pending": "true"}).json()["items"]
    assert entry not in {i["id"] for i in pending}

    # Sentimetrics' token cannot acknowledge lumen's entry.
    other = served.partner("sentimetrics").api(
        "POST",
        "/api/v1/partner/forget/ack-models",
        json={"ids": [entry], "models": [{"model_id": "x", "outcome": "retrained"}]},
    )
    assert other.status_code == 400 and "not forget entries of sentimetrics" in other.text

    # A second person: nobody answers; past the deadline the partner is listed by overdue models.
    late = heavy_users(ws, LUMEN, 2)[1]
    ws.ledger.record(late, MASTER_KEY, False)
    process_pending(ws)
    assert partners_by_overdue(ws) == []
    [listed] = partners_by_overdue(ws, utc_now() + timedelta(days=30))
    assert (listed.partner, listed.overdue_models, listed.entries, listed.blocked_agreements) == (
        "lumen-labs",
        ["lumen-1b-v1", "lumen-7b-v1"],
        1,
        [],
    )
    check_build_allowed(ws, LUMEN, utc_now() + timedelta(days=30))  # lumen's agreement does not block


def test_overdue_models_block_the_next_release_when_the_agreement_says_so(home: Workspace) -> None:
    ws = home
    with ws.session() as session, session.begin():
        add_partner(session, FIVE_PARTNER, "Five Co")
        create_agreement(
            session,
            FIVE_AGREEMENT + "block_release_when_overdue: true\n",
            "five.yaml",
            policy=ws.require_policy(),
        )
    build_release(ws, FIVE)

    declare_lineage(ws, FIVE_PARTNER, [("five-v1", _release(ws, FIVE))])
    user = heavy_users(ws, FIVE, 1)[0]
    ws.ledger.record(user, MASTER_KEY, False)
    process_pending(ws)
    check_build_allowed(ws, FIVE)  # not overdue yet
    with pytest.raises(
        UserError, match=r"five-categories-2026: 1 model\(s\) overdue .*five-v1.*block_release_when_overdue"
    ):
        check_build_allowed(ws, FIVE, utc_now() + timedelta(days=3))
    [listed] = partners_by_overdue(ws, utc_now() + timedelta(days=3))
    assert listed.blocked_agreements == [FIVE]


def test_attestation_activation_and_lapse(home: Workspace) -> None:
    ws = home
    common = {"signer": "Ada Signer, DPO", "contact": "dpo@lumen.example", "intended_use": "pretraining"}
    with pytest.raises(UserError, match="'nope-2030': no such agreement"):
        record_attestation(ws, "nope-2030", accepted=PROHIBITED_USE_CODES, **common)
    with pytest.raises(UserError, match="no such agreement of partner lumen-labs"):
        record_attestation(ws, SENTIMETRICS, accepted=PROHIBITED_USE_CODES, partner="lumen-labs", **common)
    with pytest.raises(UserError, match="missing no_redistribution"):
        record_attestation(ws, LUMEN, accepted=PROHIBITED_USE_CODES[:-1], **common)
    assert attestation_state(ws, LUMEN).state == "missing"

    # A draft agreement cannot be activated without one.
    with ws.session() as session, session.begin():
        add_partner(session, FIVE_PARTNER, "Five Co")
        create_agreement(
            session,
            FIVE_AGREEMENT.replace("status: active", "status: draft"),
            "f.yaml",
            policy=ws.require_policy(),
        )
    with (
        ws.session() as session,
        session.begin(),
        pytest.raises(LicensingError, match="without the partner's attestation"),
    ):
        set_agreement_status(session, FIVE, "active", policy=ws.require_policy())
    recorded = record_attestation(ws, FIVE, accepted=PROHIBITED_USE_CODES, **common)
    assert recorded.signer == "Ada Signer, DPO" and recorded.valid_until - recorded.recorded_at == timedelta(
        days=365
    )
    with ws.session() as session, session.begin():
        assert set_agreement_status(session, FIVE, "active", policy=ws.require_policy()).status == "active"

    # Lumen's attestation, recorded 400 days ago, lapsed after 365: its builds refuse.
    record_attestation(ws, LUMEN, accepted=PROHIBITED_USE_CODES, at=utc_now() - timedelta(days=400), **common)
    assert attestation_state(ws, LUMEN).state == "lapsed"
    before = _release(ws, LUMEN)
    with pytest.raises(UserError, match="attestation lapsed"):
        build_release(ws, LUMEN)
    assert _release(ws, LUMEN) == before
    record_attestation(ws, LUMEN, accepted=PROHIBITED_USE_CODES, **common)
    assert build_release(ws, LUMEN).release.release_id > before
