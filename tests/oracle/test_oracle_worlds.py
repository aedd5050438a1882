"""Generated worlds, each run on the system and on the docs-only oracle: after every build and
revocation batch, what each partner reads through a real server and the official client (snapshot,
change feed from version 0, a copy synced version by version) holds exactly the oracle's rows, and no
revoked text. See runner.py for what is compared and generate.py for what a world holds.

The normal run has DATALEASE_ORACLE_WORLDS (default 30, 100 with DATALEASE_TEST_DEPTH=deep) small
worlds, seeds 0…N-1; `make soak-oracle` (DATALEASE_ORACLE_SOAK=1) runs larger worlds from seed 100000
on. Any divergence fails the world.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from generate import LARGE, SMALL, world
from runner import WorldRun

from depth import examples

SOAK = os.environ.get("DATALEASE_ORACLE_SOAK") == "1"
WORLDS = int(os.environ.get("DATALEASE_ORACLE_WORLDS", 2000 if SOAK else examples(ci=30, deep=100)))
FIRST_SEED = 100_000 if SOAK else 0

pytestmark = pytest.mark.oracle


@pytest.mark.parametrize(
    "seed", [pytest.param(s, id=f"world-{s}") for s in range(FIRST_SEED, FIRST_SEED + WORLDS)]
)
def test_partners_read_what_the_docs_say(seed: int, template_home: Path, tmp_path: Path) -> None:
    generated = world(seed, LARGE if SOAK else SMALL)
    divergences = WorldRun(generated, tmp_path, template_home).run()
    if divergences:
        pytest.fail(f"{generated.describe()}\n" + "\n".join(str(d) for d in divergences), pytrace=False)
