"""Generated worlds, each run on the system and on the docs-only oracle: after every build and
revocation batch, what each partner reads through a real server and the official client (snapshot,
change feed from version 0, a copy synced version by version) holds exactly the oracle's rows, and no
revoked text. See runner.py for what is compared and generate.py for what a world holds.

The normal run has DATALEASE_ORACLE_WORLDS (default 100) small worlds, seeds 0…N-1. Worlds that show
a known bug are marked xfail(strict) in KNOWN_FAILURES, written by `python tests/oracle/classify.py`:
the mark accepts only divergences a known bug explains; when the bugs are fixed the world passes,
strict xfail fails, and the marks are rewritten. `make soak-oracle`
(DATALEASE_ORACLE_SOAK=1) runs larger worlds from seed 100000 on; there a world whose every
divergence a known bug explains is an xfail, anything else fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from generate import LARGE, SMALL, world
from known_bugs import BUGS, bugs_of, summary
from runner import WorldRun

SOAK = os.environ.get("DATALEASE_ORACLE_SOAK") == "1"
WORLDS = int(os.environ.get("DATALEASE_ORACLE_WORLDS", "2000" if SOAK else "100"))
FIRST_SEED = 100_000 if SOAK else 0

# seed -> the known bugs its world shows (python tests/oracle/classify.py writes this)
KNOWN_FAILURES: dict[int, tuple[str, ...]] = {
    1: ("catalog-view-exists",),
    2: ("catalog-view-exists",),
    5: ("catalog-view-exists", "deleted-posts-never-curated"),
    6: ("events-in-arrival-order",),
    7: ("deleted-posts-never-curated", "string-view-pii-types"),
    8: ("forget-entry-per-intent", "string-view-pii-types"),
    9: ("catalog-view-exists",),
    10: ("catalog-view-exists",),
    12: ("catalog-view-exists",),
    13: ("deleted-posts-never-curated",),
    15: ("catalog-view-exists", "forget-entry-per-intent"),
    16: ("catalog-view-exists",),
    17: ("catalog-view-exists",),
    18: ("deleted-posts-never-curated", "string-view-pii-types"),
    19: ("catalog-view-exists",),
    20: ("catalog-view-exists", "deleted-posts-never-curated"),
    21: ("catalog-view-exists", "events-in-arrival-order", "string-view-pii-types"),
    22: ("deleted-posts-never-curated", "string-view-pii-types"),
    23: ("catalog-view-exists",),
    24: ("catalog-view-exists",),
    25: ("events-in-arrival-order", "string-view-pii-types"),
    26: ("catalog-view-exists",),
    28: ("events-in-arrival-order",),
    29: ("deleted-posts-never-curated", "string-view-pii-types"),
    30: ("catalog-view-exists",),
    31: ("catalog-view-exists",),
    32: ("catalog-view-exists", "deleted-posts-never-curated"),
    33: ("deleted-posts-never-curated", "revocation-under-current-version"),
    35: ("catalog-view-exists",),
    36: ("catalog-view-exists", "deleted-posts-never-curated", "revocation-under-current-version"),
    40: ("catalog-view-exists",),
    41: ("catalog-view-exists",),
    43: ("catalog-view-exists", "deleted-posts-never-curated", "string-view-pii-types"),
    44: ("catalog-view-exists",),
    45: ("events-in-arrival-order",),
    47: ("deleted-posts-never-curated", "events-in-arrival-order"),
    48: ("catalog-view-exists",),
    50: ("events-in-arrival-order", "forget-entry-per-intent"),
    51: ("events-in-arrival-order",),
    56: ("catalog-view-exists",),
    59: ("string-view-pii-types",),
    63: ("catalog-view-exists", "deleted-posts-never-curated", "string-view-pii-types"),
    64: ("catalog-view-exists",),
    65: ("catalog-view-exists",),
    66: ("deleted-posts-never-curated",),
    67: ("catalog-view-exists", "deleted-posts-never-curated"),
    68: ("catalog-view-exists", "deleted-posts-never-curated", "forget-entry-per-intent"),
    69: ("catalog-view-exists",),
    70: ("catalog-view-exists",),
    71: ("catalog-view-exists", "string-view-pii-types"),
    73: ("deleted-posts-never-curated", "events-in-arrival-order", "string-view-pii-types"),
    74: ("catalog-view-exists",),
    76: ("catalog-view-exists", "deleted-posts-never-curated", "events-in-arrival-order"),
    77: ("catalog-view-exists", "deleted-posts-never-curated"),
    78: ("events-in-arrival-order",),
    79: ("catalog-view-exists",),
    80: ("catalog-view-exists",),
    82: ("deleted-posts-never-curated",),
    84: ("catalog-view-exists", "deleted-posts-never-curated", "string-view-pii-types"),
    85: ("events-in-arrival-order",),
    86: ("catalog-view-exists", "deleted-posts-never-curated", "events-in-arrival-order"),
    87: ("deleted-posts-never-curated",),
    89: ("events-in-arrival-order", "forget-entry-per-intent"),
    90: ("catalog-view-exists", "deleted-posts-never-curated", "string-view-pii-types"),
    92: ("deleted-posts-never-curated", "events-in-arrival-order"),
    93: ("deleted-posts-never-curated",),
    94: ("catalog-view-exists",),
    95: ("events-in-arrival-order",),
    96: ("deleted-posts-never-curated", "events-in-arrival-order"),
    97: ("events-in-arrival-order", "string-view-pii-types"),
    98: ("events-in-arrival-order",),
}

pytestmark = pytest.mark.oracle


class KnownBugsError(AssertionError):
    """Every divergence of the world is one a known bug explains (known_bugs.py)."""


def worlds() -> list[object]:
    params: list[object] = []
    for seed in range(FIRST_SEED, FIRST_SEED + WORLDS):
        bugs = () if SOAK else KNOWN_FAILURES.get(seed, ())
        reason = "; ".join(f"{b}: {BUGS[b]}" for b in bugs)
        marks = [pytest.mark.xfail(strict=True, raises=KnownBugsError, reason=reason)] if bugs else []
        params.append(pytest.param(seed, marks=marks, id=f"world-{seed}"))
    return params


@pytest.mark.parametrize("seed", worlds())
def test_partners_read_what_the_docs_say(seed: int, template_home: Path, tmp_path: Path) -> None:
    """A divergence no known bug explains fails the test even in a world marked xfail."""
    generated = world(seed, LARGE if SOAK else SMALL)
    divergences = WorldRun(generated, tmp_path, template_home).run()
    if not divergences:
        return
    report = f"{generated.describe()}\n{summary(generated, divergences)}"
    bugs, all_known = bugs_of(generated, divergences)
    if not all_known:
        pytest.fail(report, pytrace=False)
    if SOAK:
        pytest.xfail("known bugs: " + ", ".join(sorted(bugs)))
    raise KnownBugsError(report)
