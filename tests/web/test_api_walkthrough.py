"""docs/api.md's curl walk-through, run as written (bash, curl, the CLI) against a served demo world:
each numbered step's answer is what the text after it says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import Site, datalease_command, env_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _walkthrough() -> tuple[str, dict[int, str]]:
    """(the lines before step 1, {step: its lines}) of the walk-through's shell block."""
    text = DOC.read_text()
    section = text[text.index("## Walk-through") :]
    block = section.split("```", 2)[1]
    setup, *rest = re.split(r"^(?=# \d+\. )", block, flags=re.MULTILINE)
    steps = {int(s.split(".", 1)[0].removeprefix("# ")): s for s in rest}
    return setup, steps


def _run(site: Site, setup: str, step: str) -> str:
    script = (setup + step).replace(".venv/bin/datalease", datalease_command())
    script = script.replace(".venv/bin/python", sys.executable).replace("http://127.0.0.1:8000", site.base)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env_for(site.home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{step}\n{done.stderr[-2000:]}"
    return done.stdout


def test_the_walkthrough_answers_as_the_doc_says(site: Site) -> None:
    setup, steps = _walkthrough()
    assert sorted(steps) == [1, 2, 3, 4], "the walk-through's numbered steps changed: update this test"
    before = json.loads(_run(site, setup, steps[3]))
    assert before == {"allowed": True, "reasons": [], "policy_version": "2024-11", "region": "US"}
    settings = json.loads(_run(site, setup, steps[1]))
    assert settings["user_id"] > 0 and "settings" in settings, settings
    first = json.loads(_run(site, setup, steps[2]))
    assert first.get("replayed") is not True, first
    after = json.loads(_run(site, setup, steps[3]))
    assert after["allowed"] is False and "opted_out" in after["reasons"], after
    again = json.loads(_run(site, setup, steps[2]))
    assert again["replayed"] is True, again
    assert {k: v for k, v in again.items() if k != "replayed"} == {
        k: v for k, v in first.items() if k != "replayed"
    }
    export = _run(site, setup, steps[4]).splitlines()
    assert export and "," in export[0] and len(export) > 1, export  # a CSV header and released rows
