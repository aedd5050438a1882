"""Anchors catch what `consent verify` cannot (issue 15): a ledger restored from an older copy (its
last events deleted together with the chain head) passes the chain check, but a head recorded earlier
— a head file, a partner's JSON lines or CSV copy, a dataset card — names the truncated tail; a tail
rewritten after such a truncation is named too. Unreadable anchor files are refused with their name.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datalease.config import Settings
from datalease.consent.anchor import read_anchors
from datalease.errors import UserError
from datalease.services.anchors import ledger_head, verify_anchors
from datalease.services.consent import verify_ledger
from datalease.workspace import Workspace

T0 = datetime(2024, 11, 2, 9, 0, tzinfo=UTC)


def workspace(home: Path) -> Workspace:
    return Workspace(Settings(home=home, database_url=None, master_key=None, workers=1))


def record(ws: Workspace, n: int, start: int, key: str = "purpose.train_ai_system") -> None:
    for i in range(start, start + n):
        ws.ledger.record(7, key, i % 2 == 0, at=T0 + timedelta(minutes=i))


@pytest.fixture
def anchored(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A home with 5 events, a copy of its database after event 3, and a head file written at #5."""
    home = tmp_path / "home"
    ws = workspace(home)
    record(ws, 3, 0)
    ws.engine.dispose()
    shutil.copy(home / "datalease.db", tmp_path / "after-3.db")
    record(ws, 2, 3)
    head = tmp_path / "head.json"
    head.write_text(json.dumps(ledger_head(ws)), encoding="utf-8")
    ws.engine.dispose()
    return home, tmp_path / "after-3.db", head


def restore(home: Path, copy: Path) -> Workspace:
    shutil.copy(copy, home / "datalease.db")
    return workspace(home)


def test_an_intact_ledger_holds_every_anchor(anchored: tuple[Path, Path, Path]) -> None:
    home, _copy, head = anchored
    ws = workspace(home)
    check = verify_anchors(ws, [head])
    assert (check.checked, check.problems) == (1, [])
    assert json.loads(head.read_text())["consent_ledger_head"]["seq"] == 5


def test_a_truncated_tail_passes_verify_but_not_the_anchor(anchored: tuple[Path, Path, Path]) -> None:
    home, copy, head = anchored
    ws = restore(home, copy)
    assert verify_ledger(ws).ok  # the chain alone cannot tell
    [problem] = verify_anchors(ws, [head]).problems
    assert problem.kind == "truncated"
    assert problem.message == (
        f"truncated: {head} records event #5 but the ledger ends at #3: events #4..#5 were deleted"
    )


def test_a_rewritten_tail_is_named(anchored: tuple[Path, Path, Path]) -> None:
    home, copy, head = anchored
    ws = restore(home, copy)
    record(ws, 2, 3, key="share.posts")  # two other events take #4 and #5
    assert verify_ledger(ws).ok
    [problem] = verify_anchors(ws, [head]).problems
    assert problem.kind == "rewritten"
    assert problem.message.startswith("rewritten: event #5 has hash ")
    assert json.loads(head.read_text())["consent_ledger_head"]["hash"] in problem.message


def test_partner_copies_in_json_lines_and_csv(anchored: tuple[Path, Path, Path], tmp_path: Path) -> None:
    home, copy, head = anchored
    h = json.loads(head.read_text())["consent_ledger_head"]
    jsonl = tmp_path / "copy.jsonl"
    jsonl.write_text(json.dumps({"seq": 2, "hash": "0" * 64}) + "\n" + json.dumps(h) + "\n", encoding="utf-8")
    csv_copy = tmp_path / "copy.csv"
    csv_copy.write_text(f"release,seq,hash\n1,{h['seq']},{h['hash']}\n", encoding="utf-8")
    ws = restore(home, copy)
    problems = verify_anchors(ws, [jsonl, csv_copy]).problems
    assert [p.kind for p in problems] == ["rewritten", "truncated", "truncated"]
    assert problems[0].message.startswith("rewritten: event #2 has hash ")
    assert problems[2].anchor.origin == f"{csv_copy}:2"


def test_a_card_is_an_anchor() -> None:
    card = "---\npretty_name: x\nconsent_ledger_head:\n  seq: 9\n  hash: " + "a" * 64 + "\n---\n# x\n"
    [anchor] = read_anchors(card, "README.md")
    assert (anchor.seq, anchor.hash) == (9, "a" * 64)


def test_unreadable_anchors_are_refused(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "home")
    bad = tmp_path / "bad.json"
    bad.write_text('{"seq": "x", "hash": "nothex"}', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.json: seq: expected a whole number, got .x."):
        verify_anchors(ws, [bad])
    empty = tmp_path / "empty.txt"
    empty.write_text("hello\n", encoding="utf-8")
    with pytest.raises(UserError, match="no chain head found"):
        verify_anchors(ws, [empty])
