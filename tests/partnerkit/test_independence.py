"""partnerkit is what a partner runs: it must work without datalease (only the public protocol)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd

import partnerkit
from partnerkit.sync import apply_changes

PACKAGE = Path(partnerkit.__file__).parent

BLOCKER = """
import importlib.abc, pkgutil, sys

class NoDatalease(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "datalease" or name.startswith("datalease."):
            raise ImportError("partnerkit must not import " + name)
        return None

sys.meta_path.insert(0, NoDatalease())
import partnerkit
for module in pkgutil.walk_packages(partnerkit.__path__, "partnerkit."):
    if module.name != "partnerkit.__main__":
        __import__(module.name)
assert not [m for m in sys.modules if m.split(".")[0] == "datalease"]
from partnerkit.cli import main
try:
    main(["--help"])
except SystemExit as exit:
    assert exit.code == 0
print("independent")
"""


def test_no_module_of_partnerkit_imports_datalease() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] == "datalease"], f"{path}: {names}"


def test_partnerkit_runs_with_datalease_unimportable() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "independent" in proc.stdout


def test_change_feed_replay_by_key_columns() -> None:
    keys = ["post_key", "user_key"]
    local = pd.DataFrame(
        {"post_key": ["p1", "p2", "p3"], "user_key": ["u1", "u1", "u2"], "text": ["a", "b", "c"]}
    )
    feed = pd.DataFrame(
        {
            "post_key": ["p1", "p2", "p4", "p3", "p3", "p4"],
            "user_key": ["u1", "u1", "u3", "u2", "u2", "u3"],
            "text": [None, None, "d", None, "c2", None],
            "_change_type": ["delete", "delete", "insert", "update_preimage", "update_postimage", "delete"],
            "_commit_version": [2, 2, 2, 3, 3, 4],
        }
    )
    rows, inserted, deleted = apply_changes(local, feed, keys)
    assert sorted(zip(rows["post_key"], rows["text"], strict=True)) == [("p3", "c2")]
    assert (inserted, deleted) == (2, 4)  # an update counts as a delete (pre-image) and an insert
    # replaying deletes of keys already gone is a no-op
    again, inserted, deleted = apply_changes(rows, feed[feed["_change_type"] == "delete"], keys)
    assert again.equals(rows) and (inserted, deleted) == (0, 0)
