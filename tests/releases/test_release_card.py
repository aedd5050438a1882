"""The dataset card (README.md) in each share: YAML front matter that agrees with the ledger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from release_oracle import release_count
from release_world import ACME, AGREEMENTS, LUMEN, SENTIMETRICS, T0
from ruamel.yaml import YAML

from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases.model import Release
from datalease.releases.support_tables import is_licensed_data
from datalease.services.releases import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace

SLA_HOURS = {LUMEN: 72, SENTIMETRICS: 24, ACME: 48}


def front_matter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "---", "the card must start with YAML front matter"
    end = lines.index("---", 1)
    data = YAML(typ="safe").load("\n".join(lines[1:end]))
    assert isinstance(data, dict)
    return data, "\n".join(lines[end + 1 :])


def check_card(ws: Workspace, agreement_id: str) -> tuple[dict[str, Any], str, Release]:
    with ws.session() as session:
        release = latest_release(session, agreement_id)
    assert release is not None
    card = ws.settings.resolved_home / "shares" / agreement_id / "README.md"
    data, body = front_matter(card)
    assert data["release"] == release.release_id
    assert data["policy"] == {"name": "x-platform", "version": release.policy_version}
    assert release.policy_version == "2024-11"
    assert data["as_of"] == release.as_of.isoformat()
    assert data["consent_watermark"] == release.consent_watermark
    # Issue 15: the chain head at the watermark, in the ledger row and the card (a partner's witness).
    assert data["consent_ledger_head"] == {
        "seq": release.consent_watermark,
        "hash": release.consent_head_hash,
    }
    assert len(release.consent_head_hash) == 64
    configs = {c["config_name"]: (c["table_version"], c["num_rows"]) for c in data["configs"]}
    # The card describes the licensed data: not the ledger_head support table.
    licensed = [t for t in release.tables if is_licensed_data(t.category)]
    assert configs == {t.category: (t.table_version, t.rows_total) for t in licensed}
    assert f"within {SLA_HOURS[agreement_id]} hours" in body
    return data, body, release


def test_the_card_matches_the_ledger_after_every_release(world: Workspace) -> None:
    for agreement_id in AGREEMENTS:
        result = build_release(world, agreement_id, at=T0)
        assert result.card_path == world.settings.resolved_home / "shares" / agreement_id / "README.md"
        data, _body, release = check_card(world, agreement_id)
        assert release.full_build and any(n for n in release.excluded.values())
    user = world.lake.read("posts").column("author_id").to_pylist()[0]
    world.ledger.record(user, MASTER_KEY, False, at=T0 + timedelta(hours=1))
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0 + timedelta(hours=2))
        data, _body, release = check_card(world, agreement_id)
        assert data["release"] == release.release_id and not release.full_build
    assert release_count(world) == 2 * len(AGREEMENTS)


def test_the_card_names_the_licensed_terms(world: Workspace) -> None:
    build_release(world, LUMEN, at=T0)
    data, body, _release = check_card(world, LUMEN)
    assert data["purposes"] == ["train_ai_system.generative"]
    assert "lumen-labs" in data["pretty_name"]
    assert "| posts |" in body and "| reposts |" in body
    assert "except EEA" in body
