"""Reading notices, notice periods and signal meanings from a policy document, with located problems.

```yaml
notice_periods: {EEA: 30, "*": 30}          # days of notice per region ("*" for the rest)
signals:
  gpc: {"*": [third_party_sharing]}         # what Sec-GPC: 1 refuses, per region
versions:
  - id: "2024-11"
    notice:
      published: 2024-10-16
      opt_out_available_from: 2024-10-16    # the setting that undoes the change exists from then on
      require_notification: false
      sha256: …                             # optional: the whole notice's recorded hash
      texts:
        en: {title: …, text: …, sha256: …}  # sha256 optional: the recorded hash of this locale
```

Only a policy that declares `notice_periods` is held to them: every default a version turns on
(`policy/notices.turned_on`) needs a notice published at least the region's period before.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Any

import pycountry
from ruamel.yaml.comments import CommentedMap

from datalease.policy.model import ANY, Notice, NoticeText, Policy, PolicyVersion
from datalease.policy.notices import notice_sha256, period_days, text_sha256, turned_on
from datalease.policy.problems import Reader, describe, join
from datalease.policy.vocabulary import SIGNALS

NOTICE_KEYS = ("published", "opt_out_available_from", "require_notification", "sha256", "texts")
TEXT_KEYS = ("title", "text", "sha256")
LOCALE_RE = re.compile(r"^([a-z]{2})(?:-([A-Z]{2}))?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


@functools.cache
def _languages() -> frozenset[str]:
    """ISO 639-1 codes, read on first use: pycountry's language table costs ~0.13 s to load."""
    return frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def known_locale(locale: object) -> bool:
    """A BCP 47 tag of an ISO 639-1 language, optionally with an ISO 3166 country: en, de, pt-BR."""
    match = LOCALE_RE.match(locale) if isinstance(locale, str) else None
    if match is None:
        return False
    return match.group(1) in _languages() and (match.group(2) is None or match.group(2) in COUNTRIES)


def read_periods(reader: Reader, root: CommentedMap, regions: tuple[str, ...]) -> dict[str, int]:
    if root.get("notice_periods") is None:
        return {}
    node = reader.mapping(
        root["notice_periods"], "notice_periods", reader.value_position(root, "notice_periods")
    )
    out: dict[str, int] = {}
    for region in node or {}:
        field = join("notice_periods", region)
        assert node is not None
        if region not in (*regions, ANY):
            reader.report(
                reader.key_position(node, region),
                field,
                f"expected a region of the policy ({', '.join(regions)}) or '*'",
            )
            continue
        days = node[region]
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 366:
            reader.report(
                reader.value_position(node, region),
                field,
                f"expected a number of days between 0 and 366, got {describe(days)}",
            )
            continue
        out[region] = days
    return out


def read_signals(
    reader: Reader, root: CommentedMap, regions: tuple[str, ...], purposes: tuple[str, ...]
) -> dict[str, dict[str, tuple[str, ...]]]:
    if root.get("signals") is None:
        return {}
    node = reader.mapping(root["signals"], "signals", reader.value_position(root, "signals"))
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for signal in node or {}:
        assert node is not None
        field = join("signals", signal)
        if signal not in SIGNALS:
            reader.report(
                reader.key_position(node, signal),
                field,
                f"unknown signal; expected one of {', '.join(SIGNALS)}",
            )
            continue
        meaning = reader.mapping(node[signal], field, reader.value_position(node, signal))
        out[signal] = {}
        for region in meaning or {}:
            assert meaning is not None
            if region not in (*regions, ANY):
                reader.report(
                    reader.key_position(meaning, region),
                    join(field, region),
                    f"expected a region of the policy ({', '.join(regions)}) or '*'",
                )
                continue
            names = reader.names(meaning, region, field, purposes)
            out[signal][region] = names or ()
    return out


def read_notice(reader: Reader, version: CommentedMap, field: str) -> Notice | None:
    """The version's notice, or None (absent or with problems, which are reported)."""
    if version.get("notice") is None:
        return None
    field = f"{field}.notice"
    node = reader.mapping(version["notice"], field, reader.value_position(version, "notice"))
    if node is None:
        return None
    count = len(reader.problems)
    reader.known_keys(node, field, NOTICE_KEYS)
    reader.required(node, "published", field)
    reader.required(node, "texts", field)
    published = reader.instant(node, "published", field)
    available = reader.instant(node, "opt_out_available_from", field)
    texts = _texts(reader, node, field)
    if published is not None and available is not None and available > published:
        reader.report(
            reader.value_position(node, "opt_out_available_from"),
            f"{field}.opt_out_available_from",
            f"expected the opt-out to exist from the publication on ({published.date()}), "
            f"not only from {available.date()}",
        )
    whole = notice_sha256(texts)
    _recorded_hash(reader, node, field, whole)
    if len(reader.problems) > count or published is None:
        return None
    return Notice(
        published, texts, whole, available, reader.boolean(node, "require_notification", field, False)
    )


def _texts(reader: Reader, notice: CommentedMap, field: str) -> tuple[NoticeText, ...]:
    if notice.get("texts") is None:
        return ()
    node = reader.mapping(notice["texts"], f"{field}.texts", reader.value_position(notice, "texts"))
    out: list[NoticeText] = []
    for locale in node or {}:
        assert node is not None
        locale_field = join(f"{field}.texts", locale)
        if not known_locale(locale):
            reader.report(
                reader.key_position(node, locale),
                locale_field,
                f"unknown locale {describe(locale)}; expected a language code such as en, de or pt-BR",
            )
            continue
        text = reader.mapping(node[locale], locale_field, reader.value_position(node, locale))
        if text is None:
            continue
        reader.known_keys(text, locale_field, TEXT_KEYS)
        if not (reader.required(text, "title", locale_field) & reader.required(text, "text", locale_field)):
            continue
        title, body = reader.string(text, "title", locale_field), reader.string(text, "text", locale_field)
        digest = text_sha256(title, body)
        _recorded_hash(reader, text, locale_field, digest)
        out.append(NoticeText(str(locale), title, body, digest))
    if node is not None and not out and not node:
        reader.report(
            reader.value_position(notice, "texts"), f"{field}.texts", "expected at least one locale"
        )
    return tuple(sorted(out, key=lambda t: t.locale))


def _recorded_hash(reader: Reader, node: CommentedMap, field: str, actual: str) -> None:
    recorded: Any = node.get("sha256")
    if recorded is None:
        return
    position = reader.value_position(node, "sha256")
    if not isinstance(recorded, str) or not SHA256_RE.match(recorded):
        reader.report(
            position, f"{field}.sha256", f"expected 64 lowercase hex digits, got {describe(recorded)}"
        )
    elif recorded != actual:
        reader.report(
            position,
            f"{field}.sha256",
            f"the text differs from its recorded hash: recorded {recorded[:12]}…, the text hashes to {actual[:12]}…",
        )


def check_notice_periods(reader: Reader, root: CommentedMap, policy: Policy) -> None:
    """Every default a version turns on needs a notice published at least the region's period before."""
    if not policy.notice_periods:
        return
    nodes = {
        str(item.get("id")): (index, item)
        for index, item in enumerate(root.get("versions") or [])
        if isinstance(item, CommentedMap)
    }
    for version in policy.versions:
        index, node = nodes[version.version_id]
        _check_version(reader, node, f"versions[{index}]", policy, version)


def _check_version(
    reader: Reader, node: CommentedMap, field: str, policy: Policy, version: PolicyVersion
) -> None:
    changes = turned_on(policy, version)
    if not changes:
        return
    first = changes[0]
    what = f"{first.category}/{first.purpose} on by default in region {first.region} from {first.at.date()}"
    notice = version.notice
    if notice is None:
        if node.get("notice") is None:
            needed = period_days(policy, first.region) or 0
            reader.report(
                reader.key_position(node, "id"),
                f"{field}.notice",
                f"required: this version turns {what}; expected a notice published at least {needed} days before",
            )
        return
    for change in changes:
        days = period_days(policy, change.region)
        if days is not None and notice.published > change.at - _days(days):
            reader.report(
                reader.value_position(node["notice"], "published"),
                f"{field}.notice.published",
                f"published {notice.published.date()}, {(change.at - notice.published).days} days before "
                f"{change.category}/{change.purpose} turns on by default in region {change.region} on "
                f"{change.at.date()}; expected at least {days} days (by {(change.at - _days(days)).date()})",
            )
            return
    if notice.opt_out_available_from is None:
        reader.report(
            reader.node_position(node["notice"]),
            f"{field}.notice.opt_out_available_from",
            f"required: this version turns {what}; expected the date from which the opt-out exists",
        )


def _days(days: int) -> timedelta:
    return timedelta(days=days)
