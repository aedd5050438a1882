"""Checks of the derived consent state — `consent_current` and the chain head — against the ledger.

Readers run the cheap ones on every snapshot (`check_head`, `check_digest`); `verify` also compares
consent_current row by row with the latest events (`current_problem`).
"""

from __future__ import annotations

import pyarrow as pa

import datalease.consent.digest as digest
from datalease.consent.chain import GENESIS_HASH
from datalease.errors import UserError
from datalease.store.consent_append import ChainHeadState, CurrentTextRow
from datalease.store.consent_derived import CurrentMismatch
from datalease.store.consent_events import LastEvent


class ConsentStateError(UserError):
    """The derived consent state disagrees with the ledger: nothing may be built on it."""

    def __init__(self, disagreement: str) -> None:
        self.disagreement = disagreement
        super().__init__(
            f"the consent state does not match the consent ledger: {disagreement}; "
            "run `datalease consent verify`"
        )


def head_problem(head: ChainHeadState, last: LastEvent | None) -> str | None:
    """What is wrong with the chain head compared with the last event, if anything."""
    last_seq, last_hash = (0, GENESIS_HASH) if last is None else (last.seq, last.hash)
    if head.seq != last_seq:
        where = (
            "consent_events is empty" if last is None else f"the last event in consent_events is #{last_seq}"
        )
        return f"consent_chain_head records event #{head.seq} as the last one, but {where}"
    if head.hash != last_hash:
        return (
            f"consent_chain_head records hash {head.hash[:12]}… for event #{head.seq}, but that "
            f"event's hash is {last_hash[:12]}…"
        )
    return None


def check_head(head: ChainHeadState, last: LastEvent | None) -> None:
    problem = head_problem(head, last)
    if problem is not None:
        raise ConsentStateError(problem)


def check_digest(head: ChainHeadState, rows: pa.Table) -> None:
    """`rows`: consent_current as read (user_id, key, value, at, seq)."""
    actual = digest.table_digest(rows)
    if actual != head.digest:
        raise ConsentStateError(
            f"the {rows.num_rows} rows read from consent_current give digest {digest.describe(actual)}, "
            f"but consent_chain_head records {digest.describe(head.digest)}: a consent_current row was "
            "changed, added or removed behind the ledger's back (or the digest was)"
        )


def digest_problem(head: ChainHeadState, rows: pa.Table) -> str | None:
    """For verify, once the rows are known to mirror the events: only the digest can be wrong."""
    actual = digest.table_digest(rows)
    if actual == head.digest:
        return None
    return (
        f"consent_chain_head records digest {digest.describe(head.digest)} for consent_current, but "
        f"its {rows.num_rows} rows, which match the events, give {digest.describe(actual)}: "
        "the digest was edited"
    )


def _setting(row: CurrentTextRow) -> str:
    return f"#{row[4]}, {row[1]}={'true' if row[2] else 'false'} at {row[3]}"


def current_problem(mismatch: CurrentMismatch) -> str:
    """Names the (user_id, key) and what differs between its consent_current row and its events."""
    setting = f"user {mismatch.user_id} {mismatch.key}"
    expected, found = mismatch.expected, mismatch.found
    if found is None:
        assert expected is not None
        return (
            f"consent_current has no row for {setting}, whose latest event is {_setting(expected)}: "
            "a derived row was deleted"
        )
    if expected is None:
        return (
            f"consent_current has a row for {setting} ({_setting(found)}) but consent_events has no "
            "event for that setting: a derived row was inserted"
        )
    differences = []
    if found[2] != expected[2]:
        differences.append(f"value {str(found[2]).lower()} instead of {str(expected[2]).lower()}")
    if found[3] != expected[3]:
        differences.append(f"at {found[3]} instead of {expected[3]}")
    if found[4] != expected[4]:
        differences.append(f"event #{found[4]} instead of #{expected[4]}")
    return (
        f"consent_current row of {setting} does not match its latest event #{expected[4]}: "
        f"{', '.join(differences)}"
    )
