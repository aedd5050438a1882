"""`partnerkit` declares and acknowledges per model by itself (issue 18), against a real `datalease
serve`: `train --profile` declares the model version on the table version it trained on (the platform
resolves the release); after an opt-out, `forget` answers for every declared model (retrained, with the
certificate) and the entry is acknowledged; the person's page line says so; `datalease models` lists no
overdue model. partnerkit imports nothing of datalease (tests/partnerkit/test_independence.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from partner_world import POSTS, Partner, Released, build_released, start_partner

from datalease.config import Settings
from datalease.services.provenance import models_lines
from datalease.store.provenance import lineage, model_acks
from datalease.store.releases import list_releases
from datalease.workspace import Workspace

SHARDS, SLICES = 4, 2


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Released:
    return build_released(tmp_path_factory.mktemp("partner-lineage-world"))


@pytest.fixture
def partner(released: Released, tmp_path: Path) -> Iterator[Partner]:
    running = start_partner(released, tmp_path)
    yield running
    running.server.stop()


def test_train_declares_and_forget_acknowledges_per_model(partner: Partner) -> None:
    partner.sync()
    out = partner.kit(
        "train",
        "--dir",
        partner.directory,
        "--shards",
        SHARDS,
        "--slices",
        SLICES,
        "--profile",
        partner.profile.path,
    ).stdout
    model = f"{POSTS}/v1"
    assert f"declared {model} on version" in out, out
    ws = Workspace(Settings(home=partner.home))
    with ws.session() as session:
        [fact] = lineage(session, partner="lumen-labs")
        releases = list_releases(session, "lumen-genai-2025")
    assert (fact.model_id, fact.release_id) == (model, releases[-1].release_id)
    assert json.loads((partner.directory / "lineage.json").read_text()) == {"models": [model]}

    ranked = sorted(partner.released.posts_per_key.items(), key=lambda kv: (-kv[1], kv[0]))
    victim = partner.released.user_of(ranked[0][0])
    partner.opt_out(victim)
    [line] = [x for x in models_lines(ws, victim) if x.agreement_id == "lumen-genai-2025"]
    assert line.due == [model]
    partner.forget()
    with ws.session() as session:
        acks = model_acks(session)
    [ack] = [a for a in acks if a.model_id == model]
    assert ack.outcome == "retrained" and json.loads(str(ack.certificate))["model"]["version"] == 2
    [line] = [x for x in models_lines(ws, victim) if x.agreement_id == "lumen-genai-2025"]
    assert line.answered == {model: "retrained"} and line.due == []
    assert line.sentence() == (
        f"your data is in 1 declared model; 1 has been retrained without it or certified: {model} (retrained)"
    )
    report = partner.datalease_json("report", "user", str(victim))
    assert all(e["acknowledged_at"] for a in report["agreements"] for e in a["forget"])
    assert partner.datalease_json("models") == []
    ws.engine.dispose()
