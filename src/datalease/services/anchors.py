"""The ledger's anchors: the head file `consent head` writes, and `consent verify --anchor FILE`
(a head file, a card, a partner's copy of the share's ledger_head table as JSON/CSV, Parquet or Delta)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datalease.consent.anchor import (
    ROW_HASH,
    ROW_SEQ,
    Anchor,
    AnchorError,
    AnchorProblem,
    anchor_of,
    check_anchors,
    head_document,
    read_anchors,
)
from datalease.errors import UserError
from datalease.releases.ledger_head import LedgerHeadError, read_witness
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
    anchors: list[Anchor] = []
    for path in files:
        anchors += _witness_anchors(path) if _is_table(path) else _file_anchors(path)
    return AnchorCheck(len(anchors), check_anchors(ConsentEventStore(ws.engine), anchors))


def _is_table(path: Path) -> bool:
    """A folder (Delta, Parquet, a partnerkit directory) or a Parquet file: a copy of ledger_head."""
    return path.is_dir() or path.suffix == ".parquet"


def _file_anchors(path: Path) -> list[Anchor]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--anchor {path}: cannot read it ({exc})") from exc
    try:
        return read_anchors(text, str(path))
    except AnchorError as exc:
        raise UserError(f"--anchor {exc}") from exc


def _witness_anchors(path: Path) -> list[Anchor]:
    """A partner's copy of the share's ledger_head table: one anchor per row (release)."""
    try:
        rows = read_witness(path).select(["release_id", ROW_SEQ, ROW_HASH]).to_pylist()
        found = [anchor_of(row, f"{path} (ledger_head, release {row['release_id']})") for row in rows]
    except (LedgerHeadError, AnchorError) as exc:
        raise UserError(f"--anchor {exc}") from exc
    return [a for a in found if a is not None]
