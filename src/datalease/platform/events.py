"""Platform events: what happens to accounts and content that can withdraw data from partners.

Modelled on X's compliance events (`delete`, `user_delete`, `user_protect`, `user_suspend`, …); the
schema is documented in docs/revocation.md. `parse_event` is pure (JSON → PlatformEvent or a
message naming the field); `apply_events` writes their effect into the platform lake (idempotent:
applying an event twice leaves the lake as applying it once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pycountry

from datalease.platform.lake import Lake
from datalease.platform.schemas import MAX_ID
from datalease.timeparse import TimeFormatError, parse_instant

# type → (needs a post, reason code when it withdraws data, the account state it sets)
POST_EVENTS: Final = {"post_delete": ("posts", "post_deleted")}
ENGAGEMENT_EVENTS: Final = {
    "like_delete": ("likes", "like_removed"),
    "repost_delete": ("reposts", "repost_removed"),
    "bookmark_delete": ("bookmarks", "bookmark_removed"),
}
ACCOUNT_EVENTS: Final = {
    "user_delete": ("deleted", "account_deleted"),
    "user_deactivate": ("deactivated", "account_deactivated"),
    "user_suspend": ("suspended", "account_suspended"),
    "user_protect": ("protected", "account_protected"),
    "user_reactivate": ("active", None),
    "user_unsuspend": ("active", None),
    "user_unprotect": ("active", None),
}
COUNTRY_EVENT: Final = "user_country_change"
EVENT_TYPES: Final = (*POST_EVENTS, *ENGAGEMENT_EVENTS, *ACCOUNT_EVENTS, COUNTRY_EVENT)
_EVENT_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class EventError(ValueError):
    """A platform event that cannot be accepted; the message names the field."""


@dataclass(frozen=True)
class PlatformEvent:
    event_id: str | None  # the sender's id (idempotency); None: one is assigned
    type: str
    user_id: int | None
    post_id: int | None
    country: str | None
    occurred_at: datetime | None  # None: when it is recorded

    @property
    def reason_code(self) -> str | None:
        """The reason partners see when this event withdraws data; None if it cannot."""
        if self.type in POST_EVENTS:
            return POST_EVENTS[self.type][1]
        if self.type in ENGAGEMENT_EVENTS:
            return ENGAGEMENT_EVENTS[self.type][1]
        if self.type in ACCOUNT_EVENTS:
            return ACCOUNT_EVENTS[self.type][1]
        return "country_changed"

    def same_as(self, other: PlatformEvent) -> bool:
        """Same content (a retry), ignoring an unspecified occurrence time."""
        mine = (self.type, self.user_id, self.post_id, self.country)
        theirs = (other.type, other.user_id, other.post_id, other.country)
        return mine == theirs and (self.occurred_at is None or self.occurred_at == other.occurred_at)


def parse_event(raw: Any, where: str = "event") -> PlatformEvent:
    """Validate one event given as JSON; EventError names `where.<field>` and what was expected."""
    if not isinstance(raw, Mapping):
        raise EventError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"id", "type", "user_id", "post_id", "country", "at"})
    if unknown:
        raise EventError(
            f"{where}.{unknown[0]}: unknown field; expected id, type, user_id, post_id, country, at"
        )
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise EventError(f"{where}.type: expected one of {', '.join(EVENT_TYPES)}, got {_shown(kind)}")
    event_id = raw.get("id")
    if event_id is not None and (not isinstance(event_id, str) or not _EVENT_ID.match(event_id)):
        raise EventError(
            f"{where}.id: expected 1–64 characters of A–Z a–z 0–9 . _ : -, got {_shown(event_id)}"
        )
    user_id = _identifier(raw, "user_id", where, required=True)
    needs_post = kind in POST_EVENTS or kind in ENGAGEMENT_EVENTS
    post_id = _identifier(raw, "post_id", where, required=needs_post)
    if post_id is not None and not needs_post:
        raise EventError(f"{where}.post_id: a {kind} event is about an account and takes no post_id")
    country = raw.get("country")
    if kind == COUNTRY_EVENT:
        if not isinstance(country, str) or pycountry.countries.get(alpha_2=country.upper()) is None:
            raise EventError(
                f"{where}.country: expected an ISO 3166-1 alpha-2 country code, got {_shown(country)}"
            )
        country = country.upper()
    elif country is not None:
        raise EventError(f"{where}.country: only a {COUNTRY_EVENT} event takes a country")
    occurred: datetime | None = None
    if raw.get("at") is not None:
        if not isinstance(raw["at"], str):
            raise EventError(f"{where}.at: expected an ISO-8601 date-time string")
        try:
            occurred = parse_instant(raw["at"])
        except TimeFormatError as exc:
            raise EventError(f"{where}.at: {exc}") from exc
    return PlatformEvent(event_id, kind, user_id, post_id, country, occurred)


def _identifier(raw: Mapping[str, Any], field: str, where: str, *, required: bool) -> int | None:
    value = raw.get(field)
    if value is None:
        if required:
            raise EventError(f"{where}.{field}: required for a {raw.get('type')} event")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        shown = repr(value) if not isinstance(value, int) or value.bit_length() < 128 else "a larger one"
        raise EventError(f"{where}.{field}: expected a non-negative integer id up to {MAX_ID}, got {shown}")
    return value


def _shown(value: Any) -> str:
    """A value for an error message, cut short (hostile input can be megabytes)."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 1000 else "a huge integer"
    return text if len(text) <= 60 else text[:57] + "..."


def check_subjects(lake: Lake, event: PlatformEvent, where: str = "event") -> None:
    """The user (and post, like, …) the event names must exist, and a deleted account takes no event."""
    users = lake.read("users")
    found = users.filter(pc.equal(users["user_id"], event.user_id))
    if found.num_rows == 0:
        raise EventError(f"{where}.user_id: no user {event.user_id} in the platform lake")
    if found["account_state"][0].as_py() == "deleted":
        raise EventError(
            f"{where}.user_id: account {event.user_id} is already deleted; it takes no more events"
        )
    if event.type in POST_EVENTS:
        posts = lake.read("posts")
        post = posts.filter(pc.equal(posts["post_id"], event.post_id))
        if post.num_rows == 0:
            raise EventError(f"{where}.post_id: no post {event.post_id} in the platform lake")
        if post["author_id"][0].as_py() != event.user_id:
            raise EventError(f"{where}.post_id: post {event.post_id} is not by user {event.user_id}")
    if event.type in ENGAGEMENT_EVENTS:
        table = ENGAGEMENT_EVENTS[event.type][0]
        rows = lake.read(table)
        mask = pc.and_(pc.equal(rows["user_id"], event.user_id), pc.equal(rows["post_id"], event.post_id))
        if rows.filter(mask).num_rows == 0:
            raise EventError(f"{where}: user {event.user_id} has no {table[:-1]} of post {event.post_id}")


def apply_events(lake: Lake, events: Sequence[PlatformEvent]) -> None:
    """Write into the lake the state that `events` — every event in effect for the subjects they name,
    ordered by event time — add up to: per account the last account event sets its state and the last
    country event its country, whatever order they arrived in; a post (like, …) is deleted from the
    earliest deletion. One commit per touched table; idempotent."""
    if not events:
        return
    users_changes: dict[int, dict[str, Any]] = {}
    for event in events:  # in event time: a later event overrides an earlier one
        if event.type in ACCOUNT_EVENTS:
            users_changes.setdefault(event.user_id or 0, {})["account_state"] = ACCOUNT_EVENTS[event.type][0]
        elif event.type == COUNTRY_EVENT:
            users_changes.setdefault(event.user_id or 0, {})["country"] = event.country
    if users_changes:
        _update(lake, "users", "user_id", users_changes)
    deleted_posts: dict[int, datetime] = {}
    for event in events:
        if event.type in POST_EVENTS and event.occurred_at is not None:
            key = event.post_id or 0
            deleted_posts[key] = min(event.occurred_at, deleted_posts.get(key, event.occurred_at))
    if deleted_posts:
        _update(lake, "posts", "post_id", {k: {"deleted_at": at} for k, at in deleted_posts.items()})
    for kind, (table, _reason) in ENGAGEMENT_EVENTS.items():
        pairs: dict[tuple[int, int], datetime] = {}
        for event in events:
            if event.type == kind and event.occurred_at is not None:
                pair = (event.user_id or 0, event.post_id or 0)
                pairs[pair] = min(event.occurred_at, pairs.get(pair, event.occurred_at))
        if pairs:
            _update_pairs(lake, table, pairs)


def _update(lake: Lake, name: str, key: str, changes: dict[int, dict[str, Any]]) -> None:
    rows = lake.read(name)
    touched = rows.filter(pc.is_in(rows[key], pa.array(list(changes), pa.int64())))
    if touched.num_rows == 0:
        return
    records = touched.to_pylist()
    changed = []
    for record in records:
        before = dict(record)
        for column, value in changes[record[key]].items():
            if column == "deleted_at" and record[column] is not None:  # the first deletion time stays
                value = min(value, record[column])
            record[column] = value
        if record != before:
            changed.append(record)
    if changed:
        lake.upsert(name, pa.Table.from_pylist(changed, schema=rows.schema))


def _update_pairs(lake: Lake, name: str, pairs: dict[tuple[int, int], datetime]) -> None:
    rows = lake.read(name)
    users = pa.array([u for u, _ in pairs], pa.int64())
    candidates = rows.filter(pc.is_in(rows["user_id"], users)).to_pylist()
    records = []
    for record in candidates:
        when = pairs.get((record["user_id"], record["post_id"]))
        if when is not None and (record["deleted_at"] is None or when < record["deleted_at"]):
            record["deleted_at"] = when
            records.append(record)
    if records:
        lake.upsert(name, pa.Table.from_pylist(records, schema=rows.schema))
