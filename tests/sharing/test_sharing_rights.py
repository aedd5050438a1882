"""Machine-readable rights (issue 18): every shared table carries a CAWG-style `cawg.training-mining`
assertion — in the metadata answer's table configuration the official client shows (both response
formats) and in the dataset card's YAML front matter, the two saying the same thing and following the
agreement's purposes (lumen licenses generative training only, sentimetrics non-generative only). The
card states the re-identification risk of pseudonymous keys."""

from __future__ import annotations

import json

import delta_sharing
import pytest
from release_world import LUMEN, SENTIMETRICS
from ruamel.yaml import YAML
from sharing_world import Served

from datalease.licensing.rights import USES, uses_of

EXPECTED = {
    LUMEN: {
        "cawg.ai_training": "constrained",
        "cawg.ai_generative_training": "constrained",
        "cawg.ai_inference": "notAllowed",
        "cawg.data_mining": "constrained",
    },
    SENTIMETRICS: {
        "cawg.ai_training": "constrained",
        "cawg.ai_generative_training": "notAllowed",
        "cawg.ai_inference": "notAllowed",
        "cawg.data_mining": "constrained",
    },
}
PARTNER = {LUMEN: "lumen-labs", SENTIMETRICS: "sentimetrics"}
TABLES = {LUMEN: ("posts", "reposts"), SENTIMETRICS: ("posts", "likes")}


def _front_matter(served: Served, agreement: str) -> dict[str, object]:
    text = (served.home / "shares" / agreement / "README.md").read_text()
    assert text.startswith("---\n")
    front: dict[str, object] = YAML(typ="safe").load(text.split("---\n", 2)[1])
    return front


@pytest.mark.parametrize("delta", [False, True], ids=["parquet", "delta"])
@pytest.mark.parametrize("agreement", [LUMEN, SENTIMETRICS])
def test_the_official_client_shows_each_tables_rights(served: Served, agreement: str, delta: bool) -> None:
    front = _front_matter(served, agreement)
    rights = front["rights"]
    assert isinstance(rights, dict)
    for table in TABLES[agreement]:
        url = served.profile(PARTNER[agreement]).url(agreement, table)
        configuration = delta_sharing.get_table_metadata(url, use_delta_format=delta).configuration
        assert configuration["delta.enableChangeDataFeed"] == "true"
        assert uses_of(configuration) == EXPECTED[agreement], (agreement, table, configuration)
        assertion = json.loads(configuration["datalease.rights.assertion"])
        assert assertion["label"] == "cawg.training-mining"
        assert set(assertion["data"]["entries"]) == set(USES)
        # The card's front matter says exactly what the metadata says.
        assert rights[table] == assertion, (agreement, table)
        for use, entry in assertion["data"]["entries"].items():
            if entry["use"] == "constrained":
                assert "no re-identification" in entry["constraint_info"], (use, entry)
                assert configuration[f"datalease.rights.{use}.constraint_info"] == entry["constraint_info"]
            else:
                assert "constraint_info" not in entry
        if table == "posts":
            training = assertion["data"]["entries"]["cawg.ai_training"]["constraint_info"]
            assert "post text is public on the platform" in training
            only = "generative models only" if agreement == LUMEN else "non-generative models only"
            assert training.startswith(only)


def test_the_card_states_the_reidentification_risk(served: Served) -> None:
    text = (served.home / "shares" / LUMEN / "README.md").read_text()
    section = text.split("## Re-identification risk", 1)[1].split("\n## ", 1)[0]
    assert "Pseudonymous keys are not anonymity" in section
    assert "search the platform" in section
