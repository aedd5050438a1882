"""The ledger's anchors: the head file `consent head` writes, and `consent verify --anchor FILE`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datalease.consent.anchor import AnchorError, AnchorProblem, check_anchors, head_document, read_anchors
from datalease.errors import UserError
from datalease.store.consent_events import ConsentEventStore
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def ledger_head(ws: Workspace) -> dict[str, Any]:
    """`consent head`: the chain head (seq, hash) now, as a head file's document."""
    seq, hash_ = ws.ledger.head()
    return head_document(seq, hash_, utc_now().isoformat())


@dataclass(frozen=True)
class AnchorCheck:
    checked: int
    problems: list[AnchorProblem]


def verify_anchors(ws: Workspace, files: list[Path]) -> AnchorCheck:
    """Every (seq, hash) in the files against the stored ledger."""
    anchors = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--anchor {path}: cannot read it ({exc})") from exc
        try:
            anchors += read_anchors(text, str(path))
        except AnchorError as exc:
            raise UserError(f"--anchor {exc}") from exc
    return AnchorCheck(len(anchors), check_anchors(ConsentEventStore(ws.engine), anchors))
