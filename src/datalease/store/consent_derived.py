"""SQL that checks consent_current against the events it is derived from (used by verify).

consent_current mirrors the events exactly when (a) each of its rows equals an event of its
(user_id, key) — same seq, value and at — that no later event of the setting (by at, seq)
supersedes, and (b) every (user_id, key) that has events has a row. The database checks both with
index lookups (the same condition the triggers apply to each write) and returns only the first
disagreement by (user_id, key), so millions of events never become Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from datalease.store.consent_append import PG_TEXT_TIME, CurrentTextRow

_NOT_THE_LATEST_EVENT: Final = (
    "NOT EXISTS (SELECT 1 FROM consent_events AS e WHERE e.seq = c.seq AND e.user_id = c.user_id "
    "AND e.key = c.key AND e.value = c.value AND e.at = c.at) "
    "OR EXISTS (SELECT 1 FROM consent_events AS l WHERE l.user_id = c.user_id AND l.key = c.key "
    "AND l.at >= c.at AND (l.at > c.at OR l.seq > c.seq))"
)
_WITHOUT_A_ROW: Final = (
    "SELECT e.user_id, e.key FROM consent_events AS e WHERE NOT EXISTS (SELECT 1 FROM consent_current AS c "
    "WHERE c.user_id = e.user_id AND c.key = e.key) ORDER BY e.user_id, e.key LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class CurrentMismatch:
    """One (user_id, key) where consent_current is not the latest event of the setting."""

    user_id: int
    key: str
    expected: CurrentTextRow | None  # the latest event (None: the setting has no event)
    found: CurrentTextRow | None  # the consent_current row (None: there is none)


def first_current_mismatch(conn: Connection) -> CurrentMismatch | None:
    """The first (user_id, key) whose consent_current row is missing, extra or differs in value,
    at or seq from the latest event of that setting; None when the table mirrors the events."""
    at = "at" if conn.dialect.name == "sqlite" else PG_TEXT_TIME.format(col="at")
    wrong = conn.exec_driver_sql(
        f"SELECT c.user_id, c.key FROM consent_current AS c WHERE {_NOT_THE_LATEST_EVENT} "
        "ORDER BY c.user_id, c.key LIMIT 1"
    ).first()
    missing = conn.exec_driver_sql(_WITHOUT_A_ROW).first()
    firsts = [(int(row[0]), str(row[1])) for row in (wrong, missing) if row is not None]
    if not firsts:
        return None
    user_id, key = min(firsts)
    ph = "?" if conn.dialect.name == "sqlite" else "%s"
    found = conn.exec_driver_sql(
        f"SELECT user_id, key, value, {at}, seq FROM consent_current WHERE user_id = {ph} AND key = {ph}",
        (user_id, key),
    ).first()
    expected = conn.exec_driver_sql(
        f"SELECT user_id, key, value, {at}, seq FROM consent_events WHERE user_id = {ph} AND key = {ph} "
        "ORDER BY at DESC, seq DESC LIMIT 1",
        (user_id, key),
    ).first()
    return CurrentMismatch(
        user_id,
        key,
        None if expected is None else _text_row(*expected),
        None if found is None else _text_row(*found),
    )


def _text_row(user_id: Any, key: Any, value: Any, at: Any, seq: Any) -> CurrentTextRow:
    return (int(user_id), str(key), bool(value), str(at), int(seq))
