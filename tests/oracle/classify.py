"""Runs the normal run's worlds and rewrites KNOWN_FAILURES in test_oracle_worlds.py: which known bugs
each failing world shows. Worlds with a divergence no known bug explains are listed, not marked: each
is a new finding (or an oracle mistake) to look at.

    .venv/bin/python tests/oracle/classify.py [FIRST LAST]    # seeds FIRST..LAST-1, default 0..100
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

from delta_sharing.rest_client import DataSharingRestClient
from drive import make_template
from generate import SMALL, world
from known_bugs import bugs_of, summary
from runner import WorldRun

TEST_FILE = Path(__file__).with_name("test_oracle_worlds.py")
BLOCK = re.compile(
    r"KNOWN_FAILURES: dict\[int, tuple\[str, \.\.\.\]\] = \{.*?\n\}\n|KNOWN_FAILURES: dict\[int, tuple\[str, \.\.\.\]\] = \{\}\n",
    re.S,
)


def main(first: int, last: int) -> None:
    DataSharingRestClient.__init__.__defaults__ = (0,)
    started, cpu = time.perf_counter(), time.process_time()
    known: dict[int, tuple[str, ...]] = {}
    unexplained: list[int] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        template = make_template(root / "template")
        for seed in range(first, last):
            generated = world(seed, SMALL)
            divergences = WorldRun(generated, root / f"world-{seed}", template).run()
            if not divergences:
                print(f"world {seed}: as the docs say", flush=True)
                continue
            bugs, all_known = bugs_of(generated, divergences)
            if all_known:
                known[seed] = tuple(sorted(bugs))
                print(f"world {seed}: {', '.join(sorted(bugs))}", flush=True)
            else:
                unexplained.append(seed)
                print(
                    f"world {seed}: NOT EXPLAINED\n{generated.describe()}\n{summary(generated, divergences)}",
                    flush=True,
                )
    lines = ["KNOWN_FAILURES: dict[int, tuple[str, ...]] = {"]
    lines += [f"    {seed}: {_literal(bugs)}," for seed, bugs in sorted(known.items())]
    lines.append("}")
    text = TEST_FILE.read_text()
    TEST_FILE.write_text(BLOCK.sub(lambda _m: "\n".join(lines) + "\n", text, count=1))
    print(f"{len(known)} worlds show known bugs; unexplained: {unexplained or 'none'}")
    print(
        f"{last - first} worlds in {time.perf_counter() - started:.0f} s ({time.process_time() - cpu:.0f} s CPU)"
    )


def _literal(bugs: tuple[str, ...]) -> str:
    """A tuple of names as ruff format writes it."""
    return "(" + ", ".join(f'"{b}"' for b in bugs) + ("," if len(bugs) == 1 else "") + ")"


if __name__ == "__main__":
    bounds = [int(a) for a in sys.argv[1:3]] or [0, 100]
    main(*bounds)
