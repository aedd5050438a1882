"""A deterministic demo platform: users, posts, likes, reposts and bookmarks as Parquet files.

Shapes follow a real network loosely: users in many countries with a few minors and accounts in
every state; a power law (Zipf-like) for how much each user posts and engages and for how popular
each post is. Post texts come from a file (one post per line, cycled) or from a built-in generator
of varied English posts with a positive, negative or neutral tone, about 10% of them carrying an
e-mail address, phone number, URL, @mention, IP address or card number so that scrubbing shows.
The same seed, sizes and `now` give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from datalease.platform.schemas import ENGAGEMENT, POSTS, TS, USERS
from datalease.timeparse import as_utc

POSTS_PER_USER: Final = 10
# Engagement rows drawn per post (before repeated user/post pairs are dropped).
ENGAGEMENT_PER_POST: Final = {"likes": 3.0, "reposts": 0.5, "bookmarks": 0.3}
UNLIKED_SHARE: Final = 0.015
ZIPF_EXPONENT: Final = 1.2
ZIPF_OFFSET: Final = 10  # Zipf–Mandelbrot: keeps the top item near 2% instead of 15%
FIRST_SIGNUP: Final = datetime(2022, 1, 1, tzinfo=UTC)
LAST_SIGNUP: Final = datetime(2026, 12, 31, tzinfo=UTC)

COUNTRIES: Final = {
    "US": 30, "GB": 7, "CA": 4, "MX": 4, "BR": 8, "IN": 9, "JP": 6, "AU": 3, "CH": 2, "KR": 2, "NG": 2,
    "DE": 6, "FR": 5, "IE": 1, "ES": 4, "IT": 4, "NL": 2, "PL": 2, "SE": 1, "AT": 1, "BE": 1, "PT": 1,
    "DK": 1, "FI": 1, "NO": 1,
}  # fmt: skip
STATES: Final = {"active": 0.92, "protected": 0.05, "suspended": 0.01, "deactivated": 0.01, "deleted": 0.01}
MINOR_SHARE: Final = 0.03
UNKNOWN_BIRTH_SHARE: Final = 0.01
FOLLOWERS_ONLY_SHARE: Final = 0.03
DELETED_POST_SHARE: Final = 0.02
UNKNOWN_LANG_SHARE: Final = 0.05
PII_SHARE: Final = 0.10

_ADJECTIVES: Final = ("sunny", "quiet", "brave", "lucky", "rapid", "misty", "bold", "tiny", "cosmic", "urban")
_NOUNS: Final = ("fox", "otter", "panda", "falcon", "maple", "river", "pixel", "comet", "tiger", "cloud")

# Built-in post texts: template × subject × verdict of one tone × ending.
_TEMPLATES: Final = (
    "{subject} {verdict}{end}",
    "Honestly, {subject} {verdict}{end}",
    "Just found out that {subject} {verdict}{end}",
    "Can't believe {subject} {verdict}{end}",
    "Anyone else think {subject} {verdict}?",
    "Update: {subject} {verdict}{end}",
    "ok so {subject} {verdict}{end}",
    "Hot take: {subject} {verdict}{end}",
)
_SUBJECTS: Final = (
    "the new phone", "this coffee place", "the game last night", "my morning commute", "the season finale",
    "the latest app update", "our team's new coach", "the concert downtown", "this weather", "the new album",
    "the airline", "my landlord", "the train to work", "the product launch", "the local bakery",
    "the city council vote", "the new bike lane", "this book", "the hotel we stayed at", "the election debate",
)  # fmt: skip
_VERDICTS: Final = {
    "positive": (
        "is amazing", "made my whole day", "was absolutely brilliant", "is the best thing this year",
        "exceeded every expectation", "is so good, I love it", "was a wonderful surprise",
    ),
    "negative": (
        "is a total disaster", "ruined my morning", "was so disappointing", "is the worst, I hate it",
        "broke again and nobody cares", "was a terrible waste of money", "made me really angry",
    ),
    "neutral": (
        "is happening on Friday", "was discussed at the meeting", "moves to a new time slot",
        "has a new schedule", "is listed on the website", "starts next week", "was announced today",
    ),
}  # fmt: skip
_ENDINGS: Final = ("", "!", "!!", ".", " #news", " #weekend", " …", " lol", " :)", " :(")
_DOMAINS: Final = ("example.com", "example.org", "mail.example.net", "example.co.uk")
_FIRST_NAMES: Final = ("anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "iris", "jonas")
_LAST_NAMES: Final = ("miller", "schmidt", "dubois", "rossi", "garcia", "smith", "kowalski", "tanaka")
_CARDS: Final = ("4111 1111 1111 1111", "5555 5555 5555 4444", "4242 4242 4242 4242", "3782 822463 10005")


@dataclass(frozen=True)
class _Users:
    table: pa.Table
    created_us: npt.NDArray[np.int64]
    protected: npt.NDArray[np.bool_]


def generate_platform(
    out_dir: Path,
    *,
    users: int = 2000,
    seed: int = 7,
    posts_file: Path | None = None,
    now: datetime | None = None,
) -> dict[str, Path]:
    """Write users, posts, likes, reposts and bookmarks Parquet files to `out_dir`; return their paths.

    About POSTS_PER_USER posts per user. `posts_file` gives the post texts, one per line, used in
    order and cycled; otherwise the built-in generator writes them. `now` (default: today, midnight
    UTC) anchors ages and the latest timestamps.
    """
    if users < 1:
        raise ValueError(f"users: expected at least 1, got {users}")
    instant = as_utc(now) if now is not None else as_utc(datetime.now(UTC).date())
    now_us = _micros(instant)
    user_data = _users(np.random.default_rng([seed, 1]), users, instant)
    texts = _read_texts(posts_file) if posts_file is not None else None
    posts, post_created = _posts(
        np.random.default_rng([seed, 2]), user_data, users * POSTS_PER_USER, now_us, texts
    )
    tables = {"users": user_data.table, "posts": posts}
    for stream, (name, per_post) in enumerate(ENGAGEMENT_PER_POST.items(), start=3):
        rng = np.random.default_rng([seed, stream])
        tables[name] = _engagement(
            rng, name, user_data, post_created, int(len(post_created) * per_post), now_us
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in tables.items():
        paths[name] = out_dir / f"{name}.parquet"
        pq.write_table(table, paths[name])
    return paths


def zipf_weights(count: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Probabilities ∝ 1/(rank + ZIPF_OFFSET)^ZIPF_EXPONENT over `count` items, ranks shuffled."""
    weights = 1.0 / (np.arange(1, count + 1, dtype=np.float64) + ZIPF_OFFSET) ** ZIPF_EXPONENT
    shuffled: npt.NDArray[np.float64] = weights[rng.permutation(count)] / float(weights.sum())
    return shuffled


# --- users ---------------------------------------------------------------------------------------


def _users(rng: np.random.Generator, count: int, now: datetime) -> _Users:
    ids = np.arange(1, count + 1, dtype=np.int64)
    codes = list(COUNTRIES)
    shares = np.array(list(COUNTRIES.values()), dtype=np.float64)
    countries = rng.choice(len(codes), size=count, p=shares / shares.sum())
    states = rng.choice(len(STATES), size=count, p=np.array(list(STATES.values())))
    first = _micros(min(FIRST_SIGNUP, now))
    last = _micros(min(LAST_SIGNUP, now))
    created = first + (rng.random(count) * (last - first)).astype(np.int64)
    adjectives, nouns = rng.integers(0, len(_ADJECTIVES), count), rng.integers(0, len(_NOUNS), count)
    handles = [f"{_ADJECTIVES[a]}_{_NOUNS[n]}{i}" for a, n, i in zip(adjectives, nouns, ids, strict=True)]
    table = pa.Table.from_arrays(
        [
            pa.array(ids),
            pa.array(handles, pa.string()),
            pa.array([codes[c] for c in countries], pa.string()),
            _birth_dates(rng, count, now.date()),
            pa.array([list(STATES)[s] for s in states], pa.string()),
            _timestamps(created),
        ],
        schema=USERS,
    )
    return _Users(table, created, states == list(STATES).index("protected"))


def _birth_dates(rng: np.random.Generator, count: int, today: date) -> pa.Array:
    """Ages 18–80 (most 20–45), MINOR_SHARE aged 13–17, UNKNOWN_BIRTH_SHARE unknown."""
    roll = rng.random(count)
    adult_years = np.clip(rng.gamma(shape=4.0, scale=4.5, size=count) + 18.0, 18.05, 80.0)
    minor_years = rng.uniform(13.0, 17.9, size=count)
    years = np.where(roll < MINOR_SHARE, minor_years, adult_years)
    days = (today - date(1970, 1, 1)).days - (years * 365.25).astype(np.int32)
    unknown = (roll >= MINOR_SHARE) & (roll < MINOR_SHARE + UNKNOWN_BIRTH_SHARE)
    return pa.array(days.astype(np.int32), pa.int32(), mask=unknown).view(pa.date32())


# --- posts ---------------------------------------------------------------------------------------


def _posts(
    rng: np.random.Generator,
    users: _Users,
    count: int,
    now_us: int,
    texts: list[str] | None,
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """The posts table (ids in order of creation) and each post's creation time in µs."""
    authors = rng.choice(len(users.created_us), size=count, p=zipf_weights(len(users.created_us), rng))
    created = _between(rng, users.created_us[authors], now_us)
    order = np.argsort(created, kind="stable")
    authors, created = authors[order], created[order]
    followers = users.protected[authors] | (rng.random(count) < FOLLOWERS_ONLY_SHARE)
    deleted = rng.random(count) < DELETED_POST_SHARE
    deleted_at = _between(rng, created, now_us)
    post_texts = _cycled(texts, count) if texts is not None else _builtin_texts(rng, count, users.table)
    table = pa.Table.from_arrays(
        [
            pa.array(np.arange(1, count + 1, dtype=np.int64)),
            pa.array(authors.astype(np.int64) + 1),
            pa.array(post_texts, pa.string()),
            pa.array(["en"] * count, pa.string(), mask=rng.random(count) < UNKNOWN_LANG_SHARE),
            _timestamps(created),
            pa.array(np.where(followers, "followers", "public").tolist(), pa.string()),
            _timestamps(deleted_at, mask=~deleted),
        ],
        schema=POSTS,
    )
    return table, created


def _read_texts(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [line for line in lines if line]
    if not texts:
        raise ValueError(f"{path}: expected post texts, one per line, but the file has none")
    return texts


def _cycled(texts: list[str], count: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(count)]


def _builtin_texts(rng: np.random.Generator, count: int, users: pa.Table) -> list[str]:
    """Varied posts of every tone; PII_SHARE of them carry one piece of personal data."""
    tones = list(_VERDICTS)
    picks = rng.integers(0, 1 << 30, size=(count, 6))
    handles = users.column("handle").to_pylist()
    with_pii = rng.random(count) < PII_SHARE
    posts = []
    for row, pii in zip(picks.tolist(), with_pii.tolist(), strict=True):
        verdicts = _VERDICTS[tones[row[0] % len(tones)]]
        text = _TEMPLATES[row[1] % len(_TEMPLATES)].format(
            subject=_SUBJECTS[row[2] % len(_SUBJECTS)],
            verdict=verdicts[row[3] % len(verdicts)],
            end=_ENDINGS[row[4] % len(_ENDINGS)],
        )
        posts.append(f"{text} {_pii_fragment(row[5], handles)}" if pii else text)
    return posts


def _pii_fragment(pick: int, handles: list[str]) -> str:
    """One sentence with personal data, chosen by `pick`: mostly e-mails, phones, URLs, mentions."""
    kind, n = pick % 20, pick // 20
    first, last = _FIRST_NAMES[n % len(_FIRST_NAMES)], _LAST_NAMES[n % len(_LAST_NAMES)]
    if kind < 5:
        return f"Write to me at {first}.{last}{n % 100}@{_DOMAINS[n % len(_DOMAINS)]}"
    if kind < 9:
        return f"Call me on (415) 555-01{n % 100:02d}" if n % 2 else f"ring +44 20 7946 0{n % 1000:03d}"
    if kind < 13:
        return f"More at https://{_DOMAINS[n % len(_DOMAINS)]}/{last}/{n % 10_000}"
    if kind < 18:
        return f"cc @{handles[n % len(handles)]}"
    if kind < 19:
        return f"my server is at 203.0.113.{n % 254 + 1}"
    return f"card {_CARDS[n % len(_CARDS)]} if anyone needs it"


# --- engagement ----------------------------------------------------------------------------------


def _engagement(
    rng: np.random.Generator,
    name: str,
    users: _Users,
    post_created: npt.NDArray[np.int64],
    draws: int,
    now_us: int,
) -> pa.Table:
    """Likes, reposts or bookmarks: active users and popular posts drawn by power laws, one row per pair."""
    user_count, post_count = len(users.created_us), len(post_created)
    who = rng.choice(user_count, size=draws, p=zipf_weights(user_count, rng))
    what = rng.choice(post_count, size=draws, p=zipf_weights(post_count, rng))
    _, first = np.unique(who.astype(np.int64) * post_count + what, return_index=True)
    first.sort()
    who, what = who[first], what[first]
    created = _between(rng, np.maximum(post_created[what], users.created_us[who]), now_us)
    order = np.argsort(created, kind="stable")
    who, what, created = who[order], what[order], created[order]
    undone = rng.random(len(who)) < (UNLIKED_SHARE if name == "likes" else 0.0)
    return pa.Table.from_arrays(
        [
            pa.array(who.astype(np.int64) + 1),
            pa.array(what.astype(np.int64) + 1),
            _timestamps(created),
            _timestamps(_between(rng, created, now_us), mask=~undone),
        ],
        schema=ENGAGEMENT,
    )


# --- time ----------------------------------------------------------------------------------------


def _micros(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _between(rng: np.random.Generator, start: npt.NDArray[np.int64], end: int) -> npt.NDArray[np.int64]:
    """A uniform instant in [start, end] for each start (start itself when it is not before end)."""
    span = np.maximum(end - start, 0)
    return start + (rng.random(len(start)) * span).astype(np.int64)


def _timestamps(micros: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    return pa.array(micros, pa.int64(), mask=mask).view(TS)
