"""The world the revocation tests run in, a `datalease serve` of their own, and how they read it back.

Helpers only; the fixtures are in conftest.py. The world is the release tests' (200 generated users,
x-2024, three partners; tests/releases/release_world.py) with a first release of lumen-genai-2025
(posts, reposts) and sentimetrics-us-2025 (posts, likes) built *now*, a bearer token per partner (the
profile file is written per server, with its port) and a fixed platform API token.

Servers run with DATALEASE_REVOCATION_WORKER=false unless a test asks for the worker: the tests decide
when a batch runs (`process_pending` in the test process, or `datalease revoke process`).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import delta_sharing
import pandas as pd
import requests
import sharing_world
from deltalake import DeltaTable
from release_oracle import Row, expected_tables, hkey, load_source, secret_for
from release_world import ACME, LUMEN, PARTNERS, SENTIMETRICS, build_world, workspace
from sharing_world import Server

from datalease.licensing.registry import create_agreement, get_agreement
from datalease.services.releases import build_release
from datalease.sharing.profiles import issue_profile
from datalease.store.licensing import add_partner
from datalease.workspace import Workspace
from home_database import copy_home_tree

SCHEMA: Final = "platform"
RELEASED: Final = (LUMEN, SENTIMETRICS)
PARTNER_OF: Final = {LUMEN: "lumen-labs", SENTIMETRICS: "sentimetrics", ACME: "acme"}
TABLES: Final = {LUMEN: ("posts", "reposts"), SENTIMETRICS: ("posts", "likes")}
IDENTITY: Final = {
    "posts": ("post_key",),
    "likes": ("user_key", "post_key"),
    "reposts": ("user_key", "post_key"),
    "bookmarks": ("user_key", "post_key"),
    "profile": ("user_key",),
    "forget": ("forget_id",),
}
API_TOKEN: Final = "dlp_revocation-tests-platform-token"
PLACEHOLDER_ENDPOINT: Final = "http://127.0.0.1:9"
HTTP_TIMEOUT: Final = 30.0
CDF_COLUMNS: Final = ("_change_type", "_commit_version", "_commit_timestamp")
EPOCH: Final = pd.Timestamp(0, tz="UTC")


# --- the world ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """The finished world (never modify it: copy it) and the bearer text of each partner's token."""

    home: Path
    bearers: dict[str, str]


def build_base(root: Path) -> Base:
    home = root / "home"
    build_world(home)
    ws = workspace(home)
    for agreement in RELEASED:
        build_release(ws, agreement)
    bearers = {}
    for partner in PARTNERS:
        out = root / f"{partner}.share"
        issue_profile(ws, partner, out, expires="365d", endpoint_base=PLACEHOLDER_ENDPOINT)
        bearers[partner] = json.loads(out.read_text())["bearerToken"]
    ws.engine.dispose()
    return Base(home, bearers)


FIVE = "five-categories-2026"
FIVE_PARTNER = "fiveco"
FIVE_AGREEMENT = f"""\
agreement: {FIVE}
partner: {FIVE_PARTNER}
status: active
term: {{start: 2026-01-01, end: 2030-12-31}}
purposes: [train_ai_system.non_generative]
categories: [posts, likes, reposts, bookmarks, profile]
fields:
  posts: [text, pii_types, created_at]
  likes: [created_at]
  reposts: [created_at]
  bookmarks: [created_at]
  profile: [country, created_at]
pricing: {{model: per_query, amount: "0.01", currency: USD}}
deletion_sla_hours: 24
"""


def license_five(ws: Workspace) -> None:
    """License every category (posts with their PII types) to a fourth partner."""
    with ws.session() as session, session.begin():
        add_partner(session, FIVE_PARTNER, "Five Co")
        create_agreement(session, FIVE_AGREEMENT, "five.yaml", policy=ws.require_policy())


def copy_base(base: Base, target: Path) -> Workspace:
    copy_home_tree(base.home, target)
    return workspace(target)


def user_key_of(ws: Workspace, agreement: str, user_id: int) -> str:
    return hkey(secret_for(ws, agreement), f"user:{user_id}")


def post_key_of(ws: Workspace, agreement: str, post_id: int) -> str:
    return hkey(secret_for(ws, agreement), f"post:{post_id}")


def delta_rows(ws: Workspace, agreement: str, table: str, version: int | None = None) -> list[dict[str, Any]]:
    """A share table as the platform holds it (deltalake, not the server), without `bucket`."""
    path = ws.settings.resolved_home / "shares" / agreement / table
    data = DeltaTable(str(path), version=version).to_pyarrow_table().to_pylist()
    return [{k: v for k, v in r.items() if k != "bucket"} for r in data]


def heavy_users(ws: Workspace, agreement: str, count: int, *, also: str | None = None) -> list[int]:
    """Users with the most posts released to `agreement` (and, if given, with posts in `also` too)."""
    users = ws.lake.read("users").column("user_id").to_pylist()
    posts = Counter(r["user_key"] for r in delta_rows(ws, agreement, "posts"))
    other = Counter(r["user_key"] for r in delta_rows(ws, also, "posts")) if also else None
    scored = []
    for user in users:
        mine = posts[user_key_of(ws, agreement, user)]
        if mine and (other is None or other[user_key_of(ws, also or "", user)]):
            scored.append((-mine, user))
    return [u for _, u in sorted(scored)[:count]]


def released_posts_of(ws: Workspace, agreement: str, user_id: int) -> list[int]:
    """The user's posts that `agreement`'s posts table holds now."""
    keys = {r["post_key"] for r in delta_rows(ws, agreement, "posts")}
    posts = ws.lake.read("posts").to_pylist()
    return sorted(
        p["post_id"]
        for p in posts
        if p["author_id"] == user_id and post_key_of(ws, agreement, p["post_id"]) in keys
    )


# --- the oracle, as the partner sees rows -----------------------------------------------------------


def oracle_now(ws: Workspace, agreement: str, at: datetime | None = None) -> dict[str, Counter[Row]]:
    """What every table of `agreement` may hold at `at` (default now), without the hidden `bucket`."""
    when = at or datetime.now(UTC)
    policy = ws.require_policy()
    with ws.session() as session:
        model = get_agreement(session, agreement, policy)
    tables = expected_tables(policy, model, secret_for(ws, agreement), load_source(ws, when))
    return {name: Counter(strip_bucket(r) for r in rows.elements()) for name, rows in tables.items()}


def strip_bucket(row: Row) -> Row:
    return tuple((k, v) for k, v in row if k != "bucket")


def identity(row: Row | Mapping[str, Any], table: str) -> tuple[Any, ...]:
    record = dict(row) if not isinstance(row, Mapping) else row
    return tuple(record[k] for k in IDENTITY[table])


# --- the partner's side: values as the oracle normalises them ---------------------------------------


def value(item: Any) -> Any:
    """A pandas cell as release_oracle.normalise would give it (timestamps as µs since the epoch)."""
    if item is None or item is pd.NaT:
        return None
    if isinstance(item, float) and item != item:
        return None
    if isinstance(item, pd.Timestamp | datetime):
        stamp = pd.Timestamp(item)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return (stamp - EPOCH) // pd.Timedelta(microseconds=1)
    if isinstance(item, list | tuple):
        return tuple(value(x) for x in item)
    if hasattr(item, "tolist") and not isinstance(item, str | bytes):
        listed = item.tolist()
        return tuple(listed) if isinstance(listed, list) else listed
    if hasattr(item, "item"):
        return item.item()
    return item


def frame_rows(frame: pd.DataFrame, drop: Iterable[str] = ()) -> list[dict[str, Any]]:
    skip = set(drop)
    columns = [c for c in frame.columns if c not in skip]
    return [
        {c: value(v) for c, v in zip(columns, row, strict=True)}
        for row in frame[columns].astype(object).itertuples(index=False, name=None)
    ]


def as_rows(records: Iterable[Mapping[str, Any]]) -> Counter[Row]:
    return Counter(tuple(sorted((k, value(v)) for k, v in r.items())) for r in records)


def strings_of(frame: pd.DataFrame) -> set[str]:
    found: set[str] = set()
    for column in frame.columns:
        found.update(v for v in frame[column].tolist() if isinstance(v, str))
    return found


@dataclass
class Partner:
    """A partner's profile file on one server, and the official client calls on it."""

    name: str
    path: Path
    bearer: str
    endpoint: str

    def url(self, share: str, table: str) -> str:
        return f"{self.path}#{share}.{SCHEMA}.{table}"

    def snapshot(self, share: str, table: str, version: int | None = None) -> pd.DataFrame:
        return delta_sharing.load_as_pandas(self.url(share, table), version=version)

    def changes(self, share: str, table: str, start: int, end: int | None = None) -> pd.DataFrame:
        return delta_sharing.load_table_changes_as_pandas(
            self.url(share, table), starting_version=start, ending_version=end
        )

    def version(self, share: str, table: str) -> int:
        return int(delta_sharing.get_table_version(self.url(share, table)))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer}"}

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        base = self.endpoint.removesuffix("/delta-sharing")
        return requests.request(method, base + path, headers=self.headers, timeout=HTTP_TIMEOUT, **kwargs)


def write_profile(path: Path, endpoint: str, bearer: str) -> None:
    expires = (datetime.now(UTC) + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    document = {
        "shareCredentialsVersion": 1,
        "endpoint": endpoint,
        "bearerToken": bearer,
        "expirationTime": expires,
    }
    path.write_text(json.dumps(document))


# --- the server ------------------------------------------------------------------------------------


@dataclass
class Served:
    server: Server
    partners: dict[str, Partner] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.base

    def partner(self, name: str) -> Partner:
        return self.partners[name]

    def post_events(self, body: Any, token: str | None = API_TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(
            self.base + "/api/v1/platform/events", json=body, headers=headers, timeout=HTTP_TIMEOUT
        )

    def stop(self) -> None:
        self.server.stop()


def start_server(home: Path, logs: Path, *, worker: bool = False) -> Server:
    """`datalease serve` on a free loopback port (the sharing tests' starter), the platform API token
    set and the revocation worker off unless asked: the tests decide when batches run."""
    env = {"DATALEASE_API_TOKEN": API_TOKEN, "DATALEASE_REVOCATION_WORKER": "true" if worker else "false"}
    return sharing_world.start_server(home, logs, env=env)


def serve(base: Base, home: Path, root: Path, *, worker: bool = False) -> Served:
    """A server on `home` (a copy of the base) with a profile per partner under `root`."""
    server = start_server(home, root / "logs", worker=worker)
    served = Served(server)
    for partner, bearer in base.bearers.items():
        path = root / f"{partner}.share"
        write_profile(path, server.endpoint, bearer)
        served.partners[partner] = Partner(partner, path, bearer, server.endpoint)
    return served


# --- the change feed -------------------------------------------------------------------------------


def replay(
    start: Mapping[tuple[Any, ...], Mapping[str, Any]], feed: list[dict[str, Any]], table: str
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Apply a change feed (commit order; removals before additions within a commit) to `start`."""
    state = {k: dict(v) for k, v in start.items()}
    order = {"delete": 0, "update_preimage": 0, "insert": 1, "update_postimage": 1}
    for change in sorted(feed, key=lambda c: (c["_commit_version"], order[c["_change_type"]])):
        key = identity(change, table)
        if change["_change_type"] in ("delete", "update_preimage"):
            state.pop(key, None)
        else:
            state[key] = {k: v for k, v in change.items() if k not in CDF_COLUMNS}
    return state


def removal_carries_keys_only(change: Mapping[str, Any], table: str) -> bool:
    keys = set(IDENTITY[table]) | {"user_key", "post_key"}
    return all(v is None for k, v in change.items() if k not in keys and k not in CDF_COLUMNS)


# --- what a batch of intents must withdraw ----------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What an intent is about, as the tests name it: ("user", U), ("post", P) or (table, U, P)."""

    scope: str  # user | post | likes | reposts | bookmarks
    user_id: int
    post_id: int | None = None
    reason: str = ""

    def keys(self, ws: Workspace, agreement: str) -> dict[str, str]:
        """The key columns a deleted row must carry to count for this subject's forget entry."""
        if self.scope == "user":
            return {"user_key": user_key_of(ws, agreement, self.user_id)}
        assert self.post_id is not None
        if self.scope == "post":
            return {"post_key": post_key_of(ws, agreement, self.post_id)}
        return {
            "user_key": user_key_of(ws, agreement, self.user_id),
            "post_key": post_key_of(ws, agreement, self.post_id),
        }

    @property
    def forget_scope(self) -> str:
        return {"likes": "like", "reposts": "repost", "bookmarks": "bookmark"}.get(self.scope, self.scope)

    def touches(self, ws: Workspace, agreement: str, table: str, row: Mapping[str, Any]) -> bool:
        """Whether a revocation of this subject reconsiders `row` (the user's own rows and every row
        pointing at their posts; a post and the rows pointing at it; one engagement row)."""
        if self.scope == "user":
            mine, authored = _user_keys(ws, agreement, self.user_id)
            return row.get("user_key") == mine or row.get("post_key") in authored
        if self.scope == "post":
            assert self.post_id is not None
            return row.get("post_key") == post_key_of(ws, agreement, self.post_id)
        return table == self.scope and all(row.get(k) == v for k, v in self.keys(ws, agreement).items())


def _user_keys(ws: Workspace, agreement: str, user_id: int) -> tuple[str, frozenset[str]]:
    return _keys_cached(str(ws.settings.resolved_home), agreement, user_id)


@functools.lru_cache(maxsize=4096)
def _keys_cached(home: str, agreement: str, user_id: int) -> tuple[str, frozenset[str]]:
    ws = workspace(Path(home))
    secret = secret_for(ws, agreement)
    authored = frozenset(hkey(secret, f"post:{p}") for p in posts_by(ws, user_id))
    return hkey(secret, f"user:{user_id}"), authored


def posts_by(ws: Workspace, user_id: int) -> tuple[int, ...]:
    """The user's posts (authorship never changes in these tests: cached per home)."""
    return _authored(str(ws.settings.resolved_home)).get(user_id, ())


@functools.lru_cache(maxsize=64)
def _authored(home: str) -> dict[int, tuple[int, ...]]:
    posts = workspace(Path(home)).lake.read("posts").select(["post_id", "author_id"]).to_pylist()
    out: dict[int, list[int]] = {}
    for post in posts:
        out.setdefault(post["author_id"], []).append(post["post_id"])
    return {u: tuple(p) for u, p in out.items()}


def withdrawn(
    ws: Workspace,
    agreement: str,
    shown: Mapping[str, Counter[Row]],
    allowed: Mapping[str, Counter[Row]],
    subjects: Iterable[Subject],
) -> dict[str, Counter[Row]]:
    """The rows of `shown` a batch of `subjects` must delete: touched by a subject and whose identity
    the oracle (`allowed`) no longer has."""
    chosen = list(subjects)
    out: dict[str, Counter[Row]] = {}
    for table, rows in shown.items():
        if table == "forget":
            continue
        still = {identity(r, table) for r in allowed.get(table, Counter())}
        out[table] = Counter(
            {
                r: n
                for r, n in rows.items()
                if identity(r, table) not in still
                and any(s.touches(ws, agreement, table, dict(r)) for s in chosen)
            }
        )
    return out


def forget_expected(
    ws: Workspace, agreement: str, deleted: Mapping[str, Counter[Row]], subjects: Iterable[Subject]
) -> list[tuple[str, str, str, int]]:
    """(scope, subject_key, reason_code, rows) of the forget entries a batch must add: one per subject
    (the first intent naming it gives the reason) whose rows were among those deleted, each deleted
    row counted for one subject only — the person it belongs to (their rows and rows pointing at their
    posts), else the post it is about, else the engagement row itself."""
    ordered: dict[tuple[str, str], Subject] = {}
    for subject in subjects:
        keys = subject.keys(ws, agreement)
        ordered.setdefault(
            (subject.forget_scope, ":".join(keys[k] for k in sorted(keys, reverse=True))), subject
        )
    users = {key: s for (scope, key), s in ordered.items() if scope == "user"}
    authored = {p: key for key, s in users.items() for p in _user_keys(ws, agreement, s.user_id)[1]}
    posts = {key for (scope, key) in ordered if scope == "post"}
    counts: Counter[tuple[str, str]] = Counter()
    for table, found in deleted.items():
        scope = {"likes": "like", "reposts": "repost", "bookmarks": "bookmark"}.get(table)
        for row, n in found.items():
            values = dict(row)
            owner, target = values.get("user_key"), values.get("post_key")
            if owner in users:
                counts[("user", str(owner))] += n
            elif target in authored:
                counts[("user", authored[str(target)])] += n
            elif target in posts:
                counts[("post", str(target))] += n
            elif scope is not None and (scope, f"{owner}:{target}") in ordered:
                counts[(scope, f"{owner}:{target}")] += n
    return [
        (scope, key, subject.reason, counts[(scope, key)])
        for (scope, key), subject in ordered.items()
        if counts[(scope, key)]
    ]
