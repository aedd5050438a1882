"""What goes into the consent ledger: validation of each field (naming `events[i].<field>`), the
normalised event, and time-ordered event ids."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from datalease.consent.chain import ConsentEvent, canonical_time
from datalease.policy.vocabulary import SettingKeyError, validate_setting_key
from datalease.timeparse import TimeFormatError, as_utc, parse_instant

SOURCES: Final = ("user", "platform", "import", "signal")
# Where a choice was made (issue 15): recorded with the notice shown, in chain encoding 2.
SURFACES: Final = ("settings_page", "api", "import", "signal")
_HEX: Final = frozenset("0123456789abcdef")
MAX_USER_ID: Final = 2**63 - 1
MAX_ACTOR_LENGTH: Final = 200


class ConsentError(ValueError):
    """A consent event that cannot be recorded; names the field and what was expected."""

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        self.field = field
        self.index = index
        where = field if index is None else f"events[{index}].{field}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class ValidEvent:
    user_id: int
    key: str
    value: bool
    at_text: str | None  # None: "now", decided at write time
    source: str
    actor: str
    event_id: str | None
    notice_sha256: str | None = None
    notice_locale: str | None = None
    surface: str | None = None

    def same_as(self, stored: ConsentEvent) -> bool:
        return (
            self.user_id == stored.user_id
            and self.key == stored.key
            and self.value == stored.value
            and (self.at_text is None or self.at_text == canonical_time(stored.at))
            and self.source == stored.source
            and self.actor == stored.actor
            and self.notice_sha256 == stored.notice_sha256
            and self.notice_locale == stored.notice_locale
            and self.surface == stored.surface
        )


def default_actor(source: str, user_id: int) -> str:
    return f"user:{user_id}" if source == "user" else source


_uuid_lock = threading.Lock()
_uuid_state = [0, 0]  # last unix ms used, next counter value


def new_event_ids(count: int) -> list[str]:
    """`count` fresh time-ordered UUIDs (version 7, RFC 9562), ascending within this process.

    Layout: 48-bit Unix milliseconds, version 7, a 40-bit counter (spread over rand_a and the top of
    rand_b) and 34 random bits. Ascending ids keep the unique index on event_id append-only, which
    makes bulk imports much faster than random (version 4) ids; the random bits keep ids from
    different processes apart.
    """
    with _uuid_lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _uuid_state[0]:
            _uuid_state[0], _uuid_state[1] = now_ms, 0
        ms, first = _uuid_state
        if first + count >= 1 << 40:  # counter exhausted in this millisecond: borrow the next one
            ms, first = ms + 1, 0
        _uuid_state[0], _uuid_state[1] = ms, first + count
    randoms = os.urandom(5 * count)
    ids = []
    prefix = f"{ms:012x}"
    for i in range(count):
        counter = first + i
        rand = int.from_bytes(randoms[5 * i : 5 * i + 5], "big") & 0x3_FFFF_FFFF  # 34 bits
        rand_a = counter >> 28  # top 12 bits of the counter
        rand_b = ((counter & 0xFFF_FFFF) << 34) | rand  # 28 counter bits + 34 random bits = 62
        tail = (0b10 << 62) | rand_b
        ids.append(f"{prefix[:8]}-{prefix[8:]}-7{rand_a:03x}-{tail >> 48:04x}-{tail & 0xFFFF_FFFF_FFFF:012x}")
    return ids


class Validator:
    """Checks and normalises inputs; caches the (few) keys already validated."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def check(
        self,
        user_id: object,
        key: object,
        value: object,
        at: object,
        source: object,
        actor: object,
        event_id: object,
        index: int | None = None,
        *,
        notice_sha256: object = None,
        notice_locale: object = None,
        surface: object = None,
    ) -> ValidEvent:
        user_id = check_user_id(user_id, index)
        if type(key) is not str:
            raise ConsentError("key", f"expected a setting key text, got {key!r}", index=index)
        if key not in self._keys:
            try:
                validate_setting_key(key)
            except SettingKeyError as exc:
                raise ConsentError("key", str(exc), index=index) from None
            self._keys.add(key)
        if type(value) is not bool:
            raise ConsentError("value", f"expected true or false (a boolean), got {value!r}", index=index)
        if source not in SOURCES or type(source) is not str:
            raise ConsentError("source", f"expected one of {', '.join(SOURCES)}, got {source!r}", index=index)
        if at is None:
            at_text = None
        elif type(at) is datetime and at.tzinfo is UTC:  # the common case, without conversions
            at_text = at.isoformat(timespec="microseconds")[:-6] + "Z"
        else:
            at_text = canonical_time(event_instant(at, index))
        if actor is None:
            actor = default_actor(source, user_id)
        elif type(actor) is not str or not actor.strip() or len(actor) > MAX_ACTOR_LENGTH:
            raise ConsentError(
                "actor",
                f"expected a non-empty text of at most {MAX_ACTOR_LENGTH} characters naming who made the "
                f"change, got {actor!r}",
                index=index,
            )
        if event_id is not None:
            event_id = check_event_id(event_id, index)
        if notice_sha256 is None and notice_locale is None and surface is None:
            return ValidEvent(user_id, key, value, at_text, source, actor, event_id)
        return ValidEvent(
            user_id,
            key,
            value,
            at_text,
            source,
            actor,
            event_id,
            *check_shown(notice_sha256, notice_locale, surface, index),
        )


def check_shown(
    notice_sha256: object, notice_locale: object, surface: object, index: int | None = None
) -> tuple[str | None, str | None, str | None]:
    """The notice shown (its sha256, lowercase hex), the locale displayed and the surface, checked
    for form; whether the notice is one of the policy's is the caller's business."""
    if surface is not None and (type(surface) is not str or surface not in SURFACES):
        raise ConsentError("surface", f"expected one of {', '.join(SURFACES)}, got {surface!r}", index=index)
    if notice_sha256 is not None and (
        type(notice_sha256) is not str or len(notice_sha256) != 64 or not set(notice_sha256) <= _HEX
    ):
        raise ConsentError(
            "notice_sha256",
            f"expected the notice's sha256 (64 lowercase hex digits), got {notice_sha256!r}",
            index=index,
        )
    if notice_locale is not None:
        if notice_sha256 is None:
            raise ConsentError(
                "notice_locale", "a locale without a notice: give notice_sha256 too", index=index
            )
        if type(notice_locale) is not str or not _locale_form(notice_locale):
            raise ConsentError(
                "notice_locale", f"expected a locale such as en or pt-BR, got {notice_locale!r}", index=index
            )
    return notice_sha256, notice_locale, surface


def _locale_form(text: str) -> bool:
    language, _, country = text.partition("-")
    return (
        len(language) == 2
        and language.isascii()
        and language.isalpha()
        and language.islower()
        and (
            not country
            or (len(country) == 2 and country.isascii() and country.isalpha() and country.isupper())
        )
    )


def check_user_id(user_id: object, index: int | None = None) -> int:
    if type(user_id) is not int or not 0 <= user_id <= MAX_USER_ID:
        raise ConsentError(
            "user_id", f"expected a non-negative whole number (64-bit), got {user_id!r}", index=index
        )
    return user_id


def event_instant(at: object, index: int | None) -> datetime:
    if isinstance(at, datetime | date):
        return as_utc(at)
    if isinstance(at, str):
        try:
            return parse_instant(at)
        except TimeFormatError as exc:
            raise ConsentError("at", str(exc), index=index) from None
    raise ConsentError("at", f"expected a date-time such as 2024-11-15T09:30:00Z, got {at!r}", index=index)


def check_event_id(event_id: object, index: int | None) -> str:
    if isinstance(event_id, uuid.UUID):
        return str(event_id)
    if isinstance(event_id, str):
        try:
            return str(uuid.UUID(event_id))
        except ValueError:
            pass
    raise ConsentError(
        "event_id",
        f"expected a UUID such as 3f2b8c1e-0d4a-4e8b-9a61-2f0c5d7e9b13, got {event_id!r}",
        index=index,
    )


def conflict_error(valid: ValidEvent, stored: ConsentEvent, index: int | None) -> ConsentError:
    return ConsentError(
        "event_id",
        f"{valid.event_id} was already recorded as event {stored.seq} with different content "
        f"(user {stored.user_id}, {stored.key}={'true' if stored.value else 'false'} at "
        f"{canonical_time(stored.at)}, source {stored.source}, actor {stored.actor}); "
        "expected the same content for a retry, or a new event_id",
        index=index,
    )
