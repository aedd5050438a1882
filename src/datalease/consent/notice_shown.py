"""What a person was shown when they chose (issue 15): the notice in force, the locale a page
displays (from Accept-Language among the notice's locales), the check of a caller's claimed notice,
and the "after notice 2024-11 (en)" label — from the recorded notice and locale where an event has
them, inferred from the time of the choice for older events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from datalease.consent.receipts import notice_label, notice_shown
from datalease.policy.model import Notice, Policy, PolicyVersion


@dataclass(frozen=True)
class Shown:
    """The notice (whole-notice sha256) and the locale displayed."""

    notice_sha256: str
    locale: str


class ShownError(ValueError):
    """A claimed notice or locale that is not the policy's; `field` is notice_sha256 or locale."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def notice_in_force(policy: Policy | None, at: datetime) -> PolicyVersion | None:
    """The version whose notice was the latest published at `at` (None: no notice yet)."""
    version = notice_shown(policy, at)
    return version if version is not None and version.notice is not None else None


def locale_for(notice: Notice, accept_language: str | None) -> str:
    """The notice locale a page shows: the best Accept-Language match (exact, then by language),
    else the notice's first locale."""
    locales = [t.locale for t in notice.texts]
    for wanted in _preferences(accept_language):
        for locale in locales:
            if locale.lower() == wanted:
                return locale
        language = wanted.split("-")[0]
        for locale in locales:
            if locale.lower().split("-")[0] == language:
                return locale
    return locales[0]


def _preferences(header: str | None) -> list[str]:
    """Accept-Language ranges by descending q (ties keep header order); `*` and q=0 dropped."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag.lower()))
    return [tag for _, _, tag in sorted(ranked)]


def shown_on_page(policy: Policy | None, at: datetime, accept_language: str | None) -> Shown | None:
    """The settings page: the notice in force at `at` in the page's locale (None: no notice)."""
    version = notice_in_force(policy, at)
    if version is None or version.notice is None:
        return None
    return Shown(version.notice.sha256, locale_for(version.notice, accept_language))


def version_of_notice(policy: Policy | None, sha256: str) -> PolicyVersion | None:
    if policy is None:
        return None
    return next((v for v in policy.versions if v.notice is not None and v.notice.sha256 == sha256), None)


def check_claimed(policy: Policy | None, sha256: object, locale: object) -> Shown | None:
    """An API caller's `notice_sha256`/`locale`: a notice of the policy and one of its locales.
    Neither given: None. A locale without a notice: refused (which notice?)."""
    if sha256 is None and locale is None:
        return None
    if sha256 is None:
        raise ShownError("notice_sha256", "a locale without a notice: give notice_sha256 too")
    version = version_of_notice(policy, sha256) if isinstance(sha256, str) else None
    if version is None or version.notice is None:
        raise ShownError(
            "notice_sha256",
            f"{str(sha256)[:80]!r} is not the sha256 of any notice of the policy in force"
            " (see `datalease policy show`)",
        )
    locales = [t.locale for t in version.notice.texts]
    if locale is None:
        return Shown(version.notice.sha256, locales[0]) if len(locales) == 1 else _needs_locale(locales)
    if locale not in locales:
        raise ShownError(
            "locale",
            f"{str(locale)[:40]!r}: notice {version.version_id} has no text in that locale; "
            f"expected one of {', '.join(locales)}",
        )
    return Shown(version.notice.sha256, str(locale))


def _needs_locale(locales: list[str]) -> Shown:
    raise ShownError("locale", f"the notice has several locales: give the one shown ({', '.join(locales)})")


def chosen_after(policy: Policy | None, at: datetime, sha256: str | None, locale: str | None) -> str | None:
    """`2024-11 (en)` from the recorded notice and locale; an event without them: inferred from `at`
    (`2024-11 (de, en)`, the notice's locales); None when there was no notice."""
    if sha256 is None:
        return notice_label(policy, at)
    version = version_of_notice(policy, sha256)
    name = version.version_id if version is not None else f"sha256 {sha256[:12]}"
    return f"{name} ({locale})" if locale else name
