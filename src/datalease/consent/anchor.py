"""Anchors: copies of the chain head (seq, hash) held outside the ledger, and the check against them.

`consent verify` proves the chain is internally consistent, but deleting the last events together with
the chain head leaves a shorter chain that is just as consistent. Every release ledger row, every
dataset card and every head file records (seq, hash) at a moment; partners hold copies. An anchor
(seq, hash) is satisfied when the ledger still has event #seq with exactly that hash:

- the ledger ends before #seq → **truncated** (events after the ledger's end were deleted);
- event #seq has another hash → **rewritten** (it, or an event before it, was changed).

Accepted files: a head file or any JSON holding `consent_ledger_head: {seq, hash}`, `{seq, hash}` or
a ledger_head row's `{consent_seq, consent_hash}` (or a list of them), JSON lines, CSV with a
`seq,hash` (or `consent_seq,consent_hash`) header, a dataset card (YAML front matter). A partner's copy
of the share's `ledger_head` table as Parquet or Delta is read by `services/anchors.py`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from datalease.consent.chain import GENESIS_HASH
from datalease.store.consent_events import ConsentEventStore

HEAD_FIELD = "consent_ledger_head"
ROW_SEQ, ROW_HASH = "consent_seq", "consent_hash"  # the columns of a share's ledger_head table
_HASH = re.compile(r"^[0-9a-f]{64}$")


class AnchorError(ValueError):
    """An anchor file that cannot be read."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    origin: str  # file and place, for messages


def head_document(seq: int, hash_: str, at: str) -> dict[str, Any]:
    return {HEAD_FIELD: {"seq": seq, "hash": hash_}, "at": at}


def anchor_of(value: Any, origin: str) -> Anchor | None:
    """The (seq, hash) a record holds — `{seq, hash}`, `consent_ledger_head: {...}` or a ledger_head
    table row's `consent_seq` / `consent_hash` — None when it holds none; AnchorError if ill-typed."""
    if isinstance(value, dict) and HEAD_FIELD in value:
        value = value[HEAD_FIELD]
    names = (ROW_SEQ, ROW_HASH) if isinstance(value, dict) and ROW_SEQ in value else ("seq", "hash")
    if not isinstance(value, dict) or names[0] not in value or names[1] not in value:
        return None
    seq, hash_ = value[names[0]], value[names[1]]
    if isinstance(seq, str) and seq.isdigit():
        seq = int(seq)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise AnchorError(f"{origin}: {names[0]}: expected a whole number, got {seq!r}")
    if not isinstance(hash_, str) or not _HASH.match(hash_):
        raise AnchorError(f"{origin}: {names[1]}: expected 64 hex digits, got {hash_!r}")
    return Anchor(seq, hash_, origin)


def _from_json(document: Any, origin: str) -> Iterator[Anchor]:
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items):
        found = anchor_of(item, f"{origin}[{index}]" if isinstance(document, list) else origin)
        if found is not None:
            yield found


def read_anchors(text: str, origin: str) -> list[Anchor]:
    """Every (seq, hash) the file records; AnchorError when it holds none."""
    stripped = text.lstrip()
    anchors: list[Anchor] = []
    if stripped.startswith("---"):
        front = stripped[3:].split("\n---", 1)[0]
        try:
            document = YAML(typ="safe").load(front)
        except YAMLError as exc:
            raise AnchorError(f"{origin}: the card's front matter is not YAML ({exc})") from exc
        anchors = list(_from_json(document, f"{origin} (card)")) if isinstance(document, dict) else []
    elif stripped.startswith(("{", "[")):
        try:
            anchors = list(_from_json(json.loads(text), origin))
        except json.JSONDecodeError:
            anchors = [
                a
                for number, line in enumerate(text.splitlines(), 1)
                if line.strip()
                for a in _from_json(_json_line(line, f"{origin}:{number}"), f"{origin}:{number}")
            ]
    elif stripped:
        rows = csv.DictReader(io.StringIO(text))
        anchors = [
            a
            for number, row in enumerate(rows, 2)
            if (a := anchor_of(dict(row), f"{origin}:{number}")) is not None
        ]
    if not anchors:
        raise AnchorError(
            f"{origin}: no chain head found; expected a head file (datalease consent head), a dataset "
            "card, or a partner's copy of ledger_head (a Delta or Parquet folder, JSON, JSON lines or CSV "
            "with seq,hash or consent_seq,consent_hash)"
        )
    return anchors


def _json_line(line: str, origin: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise AnchorError(f"{origin}: expected JSON ({exc.msg})") from exc


@dataclass(frozen=True)
class AnchorProblem:
    anchor: Anchor
    kind: str  # truncated | rewritten
    message: str


def check_anchors(store: ConsentEventStore, anchors: list[Anchor]) -> list[AnchorProblem]:
    """Each anchor against the ledger as stored now."""
    problems: list[AnchorProblem] = []
    with store.read_transaction() as conn:
        last = store.last_event(conn)
        end = last.seq if last else 0
        for anchor in anchors:
            if anchor.seq == 0:
                if anchor.hash != GENESIS_HASH:
                    problems.append(
                        AnchorProblem(
                            anchor, "rewritten", f"{anchor.origin}: seq 0 must carry the genesis hash"
                        )
                    )
                continue
            if anchor.seq > end:
                span = f"#{end + 1}" if end + 1 == anchor.seq else f"#{end + 1}..#{anchor.seq}"
                problems.append(
                    AnchorProblem(
                        anchor,
                        "truncated",
                        f"truncated: {anchor.origin} records event #{anchor.seq} but the ledger ends at "
                        f"#{end}: events {span} were deleted",
                    )
                )
                continue
            rows = [
                row
                for batch in store.iter_chain(conn, after=anchor.seq - 1, upto=anchor.seq)
                for row in batch
            ]
            stored = rows[0][10] if rows else None
            if stored != anchor.hash:
                problems.append(
                    AnchorProblem(
                        anchor,
                        "rewritten",
                        f"rewritten: event #{anchor.seq} has hash {stored} but {anchor.origin} recorded "
                        f"{anchor.hash}: it or an event before it was changed",
                    )
                )
    return problems
