"""`datalease consent import FILE`: a history of choices made elsewhere (a platform's own records,
a migration from another consent tool), JSON Lines, recorded all or nothing with source and surface
`import`, each with the notice shown when the file names one.

One object per line: `user_id`, `key`, `value` (required); `at`, `actor`, `event_id`,
`notice_sha256`, `locale` (optional). A notice must be one of the active policy's notices and the
locale one of its texts. A bad line refuses the whole file, naming `FILE:LINE: <field>`; nothing is
recorded. Re-importing a file whose lines carry `event_id`s records nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from datalease.consent.inputs import ConsentError
from datalease.consent.ledger import BulkResult, NewConsentEvent
from datalease.consent.notice_shown import ShownError, check_claimed
from datalease.errors import UserError
from datalease.workspace import Workspace

FIELDS: Final = ("user_id", "key", "value", "at", "actor", "event_id", "notice_sha256", "locale")


def import_events(ws: Workspace, path: Path) -> BulkResult:
    """Record every line of `path` in one ledger transaction (source and surface `import`)."""
    events = list(_events(ws, path))
    if not events:
        raise UserError(f"{path}: no events (expected one JSON object per line)")
    try:
        return ws.ledger.record_many([event for _, event in events])
    except ConsentError as exc:
        line = events[exc.index][0] if exc.index is not None and exc.index < len(events) else None
        where = f"{path}:{line}" if line is not None else str(path)
        raise UserError(f"{where}: {exc.field}: {str(exc).split(': ', 1)[-1]}; nothing recorded") from exc


def _events(ws: Workspace, path: Path) -> Iterator[tuple[int, NewConsentEvent]]:
    policy = ws.active_policy()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item: Any = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{path}:{number}: expected a JSON object ({exc}); nothing recorded") from exc
        if not isinstance(item, dict):
            raise UserError(f"{path}:{number}: expected a JSON object, got {line[:60]!r}; nothing recorded")
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise UserError(
                f"{path}:{number}: {unknown[0]}: unknown field; expected {', '.join(FIELDS)}; nothing recorded"
            )
        for required in ("user_id", "key", "value"):
            if required not in item:
                raise UserError(f"{path}:{number}: {required}: missing; nothing recorded")
        try:
            shown = check_claimed(policy, item.get("notice_sha256"), item.get("locale"))
        except ShownError as exc:
            raise UserError(f"{path}:{number}: {exc.field}: {exc}; nothing recorded") from exc
        yield (
            number,
            NewConsentEvent(
                item["user_id"],
                item["key"],
                item["value"],
                at=item.get("at"),
                source="import",
                actor=item.get("actor"),
                event_id=item.get("event_id"),
                notice_sha256=shown.notice_sha256 if shown else None,
                notice_locale=shown.locale if shown else None,
                surface="import",
            ),
        )
