"""The world the sharing tests serve, the `datalease serve` process, and what the tests compare with.

Helpers only; the fixtures are in conftest.py. The world reuses the release tests' builder
(tests/releases/release_world.py: 200 generated users, x-2024, three partners and agreements) and
adds releases, so that every table has a history with a floor:

    release 1 (T0)        lumen-genai-2025 and sentimetrics-us-2025, every table at version 0
    consent               VICTIM (a US author with posts in both shares) sets share_with_partners off
    release 2 (T0 + 2d)   both agreements: VICTIM's rows removed → posts/reposts/likes at version 1,
                          the history floor of every table (its commit removed rows)
    new post              NEW_POST_TEXT by another released US author, ingested and curated
    release 3 (T0 + 3d)   both agreements: the new post added (no rows removed) → posts at version 2

Revocation may add a `forget` table to a share (keys only); the tests expect whatever Delta tables
the share directory holds (`World.shared`). acme-insights-2026 (partner acme) is never released:
acme has a token but no share. A copy of the home taken right after release 1 (`home_r1`) lets a
test revoke while the server runs.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import requests
from cli_harness import cli_env, expect, run
from deltalake import DeltaTable
from release_world import LUMEN, SENTIMETRICS, T0, Platform, build_world, workspace

from datalease.releases.build import build_release
from datalease.releases.keys import agreement_secret, user_key
from datalease.releases.plan import IDENTITY
from datalease.revocation.forget_table import IDENTITY as FORGET_IDENTITY
from datalease.revocation.forget_table import TABLE as FORGET_TABLE
from datalease.workspace import Workspace

SCHEMA: Final = "platform"
PARTITION: Final = "bucket"
PREFIX: Final = "/delta-sharing"
TABLES: Final = {LUMEN: ("posts", "reposts"), SENTIMETRICS: ("likes", "posts")}
PARTNER_OF: Final = {LUMEN: "lumen-labs", SENTIMETRICS: "sentimetrics"}
NEW_POST_TEXT: Final = "a brand new post about sharing, released on its own"
CDF_COLUMNS: Final = ("_change_type", "_commit_version", "_commit_timestamp")
SERVER_START_SECONDS: Final = 60.0
HTTP_TIMEOUT: Final = 30.0


# --- the world --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableFacts:
    """One release table as the platform sees it, read with deltalake, never through the server."""

    agreement: str
    name: str
    path: Path
    versions: tuple[int, ...]  # every Delta version of the table
    released: tuple[int, ...]  # versions pinned by a release
    floor: int  # the latest released version whose commit removed rows (0 if none did)
    timestamps: dict[int, int]  # commit timestamp (ms) per version
    columns: tuple[str, ...]  # the partner's columns: the table's minus the partition column
    keys: tuple[str, ...]  # the *_key columns
    identity: tuple[str, ...]  # what identifies a row (the post key; user + post key; …)

    @property
    def latest(self) -> int:
        return max(self.released)

    def snapshot(self, version: int | None = None) -> pd.DataFrame:
        """The table at `version` (latest if None) without the partition column."""
        table = DeltaTable(str(self.path), version=self.latest if version is None else version)
        data = table.to_pyarrow_table(columns=list(self.columns))
        return arrow_to_pandas(data)

    def changes(self, start: int, end: int) -> pd.DataFrame:
        """The change feed a partner must see from `start` to `end`, computed from the released
        snapshots alone: per released version, the rows that differ (by identity) from the released
        version before it; deletes carry keys only, and an insert whose row a later released version
        (up to the latest) removed is not replayed."""
        frames = []
        removed_at: dict[str, int] = {}
        for index, version in enumerate(self.released):
            before = self.snapshot(self.released[index - 1]) if index else self.snapshot(version).iloc[0:0]
            frame = _transition(before, self.snapshot(version), self.identity, self.keys)
            frame["_commit_version"] = version
            for key in _identity(frame, self.identity)[frame["_change_type"].isin(REMOVED)]:
                removed_at[key] = max(removed_at.get(key, -1), version)
            frames.append(frame)
        feed = pd.concat(frames, ignore_index=True)
        identity = _identity(feed, self.identity)
        removal = feed["_change_type"].isin(REMOVED)
        replayed = [
            bool(gone) or removed_at.get(key, -1) <= int(version)
            for gone, key, version in zip(removal, identity, feed["_commit_version"], strict=True)
        ]
        window = (feed["_commit_version"] >= start) & (feed["_commit_version"] <= end)
        return feed[pd.Series(replayed, index=feed.index) & window].copy()


REMOVED: Final = ("delete", "update_preimage")


def _identity(frame: pd.DataFrame, identity: tuple[str, ...]) -> pd.Series:
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    return frame[list(identity)].astype(str).agg("|".join, axis=1)


def _transition(
    before: pd.DataFrame, after: pd.DataFrame, identity: tuple[str, ...], keys: tuple[str, ...]
) -> pd.DataFrame:
    """Rows only before (delete), only after (insert), in both with other values (update pre/post)."""
    old = dict(zip(_identity(before, identity), before.to_dict("records"), strict=True))
    new = dict(zip(_identity(after, identity), after.to_dict("records"), strict=True))
    columns = list(after.columns)

    def keys_only(row: dict[str, Any]) -> dict[str, Any]:
        return {c: (row[c] if c in keys else None) for c in columns}

    rows: list[dict[str, Any]] = []
    for key, row in old.items():
        if key not in new:
            rows.append({**keys_only(row), "_change_type": "delete"})
        elif repr(row) != repr(new[key]):
            rows.append({**keys_only(row), "_change_type": "update_preimage"})
            rows.append({**new[key], "_change_type": "update_postimage"})
    rows += [{**row, "_change_type": "insert"} for key, row in new.items() if key not in old]
    frame = pd.DataFrame(rows, columns=[*columns, "_change_type"])
    for column in columns:
        frame[column] = frame[column].astype(object)
    return frame


@dataclass(frozen=True)
class World:
    home: Path  # the finished world (never served, never modified: copy it)
    home_r1: Path  # a copy taken right after release 1
    victim: int  # the user who opted out before release 2
    victim_keys: dict[str, str]  # agreement -> the victim's user_key there
    victim_texts: frozenset[str]  # the released text of every post of the victim
    new_post_author: int
    tables: dict[tuple[str, str], TableFacts] = field(default_factory=dict)
    shared: dict[str, tuple[str, ...]] = field(default_factory=dict)  # agreement -> its Delta tables

    def table(self, agreement: str, name: str) -> TableFacts:
        return self.tables[(agreement, name)]


def arrow_to_pandas(table: Any) -> pd.DataFrame:
    """Plain (non-view) strings, then pandas."""
    data = pa.table(table)
    fields = [
        pa.field(f.name, pa.string())
        if pa.types.is_string_view(f.type) or pa.types.is_large_string(f.type)
        else f
        for f in data.schema
    ]
    return data.cast(pa.schema(fields)).to_pandas()


def _released_versions(ws: Workspace, agreement: str, name: str) -> tuple[int, ...]:
    from datalease.store.releases import list_releases

    with ws.session() as session:
        releases = list_releases(session, agreement)
    return tuple(sorted({t.table_version for r in releases for t in r.tables if t.category == name}))


def _table_facts(ws: Workspace, agreement: str, name: str) -> TableFacts:
    path = ws.settings.resolved_home / "shares" / agreement / name
    log = path / "_delta_log"
    versions = tuple(sorted(int(p.stem) for p in log.glob("*.json")))
    timestamps: dict[int, int] = {}
    removing: set[int] = set()
    for version in versions:
        for line in (log / f"{version:020d}.json").read_text().splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                timestamps[version] = int(action["commitInfo"]["timestamp"])
            if "remove" in action:
                removing.add(version)
    released = _released_versions(ws, agreement, name)
    floor = max((v for v in released if v in removing), default=0)
    schema = DeltaTable(str(path)).schema().to_arrow()
    columns = tuple(f.name for f in pa.schema(schema) if f.name != PARTITION)
    keys = tuple(c for c in columns if c.endswith("_key"))
    identity = FORGET_IDENTITY if name == FORGET_TABLE else IDENTITY[name]
    return TableFacts(agreement, name, path, versions, released, floor, timestamps, columns, keys, identity)


def _pick_victim(ws: Workspace) -> tuple[int, int]:
    """(victim, another author): US authors with posts released in both shares, most posts first."""
    shares = ws.settings.resolved_home / "shares"
    secrets = {a: agreement_secret(ws.master_key, a) for a in TABLES}
    counts = {
        a: Counter(DeltaTable(str(shares / a / "posts")).to_pyarrow_table().column("user_key").to_pylist())
        for a in TABLES
    }
    users = ws.lake.read("users").column("user_id").to_pylist()
    both = sorted(
        (
            (counts[LUMEN][user_key(secrets[LUMEN], u)], u)
            for u in users
            if all(counts[a][user_key(secrets[a], u)] for a in TABLES)
        ),
        reverse=True,
    )
    assert len(both) >= 2, "the world has fewer than two US authors released to both agreements"
    return both[0][1], both[1][1]


def build_sharing_world(root: Path) -> World:
    home = root / "home"
    build_world(home)
    ws = workspace(home)
    for agreement in TABLES:
        build_release(ws, agreement, at=T0)
    home_r1 = root / "home-r1"
    ws.engine.dispose()
    shutil.copytree(home, home_r1)

    victim, author = _pick_victim(ws)
    secrets = {a: agreement_secret(ws.master_key, a) for a in TABLES}
    victim_keys = {a: user_key(s, victim) for a, s in secrets.items()}
    texts: set[str] = set()
    for agreement in TABLES:
        posts = DeltaTable(str(home / "shares" / agreement / "posts")).to_pyarrow_table().to_pylist()
        texts.update(p["text"] for p in posts if p["user_key"] == victim_keys[agreement] and p["text"])
    ws.ledger.record(victim, "share_with_partners", False, at=T0 + timedelta(days=1))
    for agreement in TABLES:
        build_release(ws, agreement, at=T0 + timedelta(days=2))

    platform = Platform.read(ws, root / "scratch")
    post_id = max(platform.post_ids()) + 1
    template = platform.post(platform.post_ids()[0])
    platform.insert(
        "posts",
        (post_id,),
        {
            **template,
            "post_id": post_id,
            "author_id": author,
            "text": NEW_POST_TEXT,
            "created_at": T0 + timedelta(days=2, hours=1),
            "visibility": "public",
            "deleted_at": None,
        },
    )
    platform.flush()
    for agreement in TABLES:
        build_release(ws, agreement, at=T0 + timedelta(days=3))

    tables = {(a, n): _table_facts(ws, a, n) for a, names in TABLES.items() for n in names}
    ws.engine.dispose()
    # Texts shared with other authors would make "appears nowhere" meaningless: keep the victim's own.
    others: set[str] = set()
    for agreement in TABLES:
        latest = DeltaTable(str(home / "shares" / agreement / "posts")).to_pyarrow_table()
        others.update(t for t in latest.column("text").to_pylist() if t)
    shared = {
        a: tuple(sorted(p.parent.name for p in (home / "shares" / a).glob("*/_delta_log"))) for a in TABLES
    }
    world = World(home, home_r1, victim, victim_keys, frozenset(texts - others), author, tables, shared)
    _check_world(world)
    return world


def _check_world(world: World) -> None:
    """The world has the shape the tests rely on."""
    assert world.victim_texts, "the victim's posts all share their text with someone else's"
    for (agreement, name), facts in world.tables.items():
        assert facts.floor == 1, f"{agreement}.{name}: floor {facts.floor}, expected 1"
        assert facts.released[0] == 0, f"{agreement}.{name}: version 0 is not released"
    for agreement in TABLES:
        assert set(TABLES[agreement]) <= set(world.shared[agreement]), world.shared
        posts = world.table(agreement, "posts")
        assert posts.released == (0, 1, 2), f"{agreement}.posts: released {posts.released}"
        assert posts.timestamps[0] < posts.timestamps[1] < posts.timestamps[2]


# --- time ---------------------------------------------------------------------------------------------


def iso_ms(milliseconds: int) -> str:
    """A commit timestamp as the protocol's ISO-8601 text, to the millisecond."""
    at = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"


# --- the server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


RUNNING: list[Server] = []  # for the failure report hook in conftest.py


@dataclass
class Server:
    """A real `datalease serve` on a loopback port, its stdout/stderr in files."""

    home: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.base + PREFIX

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(home: Path, logs: Path, attempts: int = 3, env: dict[str, str] | None = None) -> Server:
    """Start `datalease serve` and wait until it answers (a free port is retried if taken meanwhile);
    `env` adds settings (e.g. DATALEASE_REVOCATION_WORKER=false)."""
    logs.mkdir(parents=True, exist_ok=True)
    script = Path(sys.executable).with_name("datalease")
    failure = ""
    for attempt in range(attempts):
        port = free_port()
        log_path = logs / f"serve-{port}-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=cli_env(home, {"DATALEASE_WORKERS": "1", **(env or {})}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = Server(home, port, process, log_path)
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            try:
                requests.get(f"{server.endpoint}/shares", timeout=2)
            except requests.ConnectionError:
                with contextlib.suppress(subprocess.TimeoutExpired):  # poll interval; notices an exit
                    process.wait(timeout=0.05)
                continue
            RUNNING.append(server)
            return server
        server.stop()
        failure = f"`datalease serve` on port {port} did not answer (exit {process.poll()}):\n{server.log()}"
        if "address already in use" not in failure.lower():
            break
    raise AssertionError(failure)


# --- profiles -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    partner: str
    path: Path
    token_id: str
    bearer: str
    endpoint: str

    def url(self, share: str, table: str, schema: str = SCHEMA) -> str:
        return f"{self.path}#{share}.{schema}.{table}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer}"}


def make_profile(server: Server, partner: str, out: Path, *extra: str) -> Profile:
    """`datalease partner token PARTNER --out FILE --endpoint URL` on the server's home."""
    result = expect(
        run("partner", "token", partner, "--out", out, "--endpoint", server.base, *extra, home=server.home), 0
    )
    document = json.loads(out.read_text())
    assert document["shareCredentialsVersion"] == 1, document
    assert document["endpoint"] == server.endpoint, document
    token_id = document["bearerToken"].split("_")[1]
    assert token_id in result.out, result.describe()
    return Profile(partner, out, token_id, document["bearerToken"], document["endpoint"])


# --- comparing ----------------------------------------------------------------------------------------


def normalise(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN: a null float
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return normalise(value.item())
    return value


def rows_of(frame: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> list[tuple[Any, ...]]:
    """The frame's rows over `columns`, normalised and sorted, for equality checks."""
    records = [
        tuple(normalise(v) for v in row)
        for row in frame[list(columns)].astype(object).itertuples(index=False, name=None)
    ]
    return sorted(records, key=repr)


def get(
    profile: Profile, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> requests.Response:
    """GET on the profile's endpoint with its bearer token."""
    merged = {**profile.headers, **(headers or {})}
    return requests.get(profile.endpoint + path, headers=merged, timeout=HTTP_TIMEOUT, **kwargs)


def post(
    profile: Profile, path: str, body: dict[str, Any], *, headers: dict[str, str] | None = None
) -> requests.Response:
    """POST a JSON body on the profile's endpoint with its bearer token."""
    merged = {**profile.headers, **(headers or {})}
    return requests.post(profile.endpoint + path, headers=merged, json=body, timeout=HTTP_TIMEOUT)


def error_of(response: requests.Response, status: int, code: str) -> str:
    """Assert an error response's status and JSON errorCode; returns its message."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    body = response.json()
    assert body.get("errorCode") == code, body
    message = body.get("message")
    assert isinstance(message, str) and message, body
    return message


def json_lines(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:2000]}"
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def file_urls(lines: list[dict[str, Any]]) -> list[str]:
    """Every file URL of a parquet- or delta-format /query or /changes answer."""
    urls: list[str] = []
    for line in lines:
        for kind in ("file", "add", "cdf", "remove"):
            if kind in line and "url" in line[kind]:
                urls.append(line[kind]["url"])
        single = line.get("file", {}).get("deltaSingleAction")
        if single:
            for action in single.values():
                if isinstance(action, dict) and "path" in action:
                    urls.append(action["path"])
    return urls


# --- a served world ----------------------------------------------------------------------------

PARTNERS = ("lumen-labs", "sentimetrics", "acme")


@dataclass
class Served:
    """A running server on its own copy of a world home, with a profile per partner."""

    world: World
    server: Server
    profiles: dict[str, Profile]
    root: Path

    @property
    def home(self) -> Path:
        return self.server.home

    def profile(self, partner: str) -> Profile:
        return self.profiles[partner]

    def new_profile(self, partner: str, *extra: str) -> Profile:
        """A further token for `partner` (its own file)."""
        count = len(list(self.root.glob("*.share")))
        return make_profile(self.server, partner, self.root / f"{partner}-{count}.share", *extra)


def serve_copy(world: World, source: Path, root: Path, partners: tuple[str, ...] = PARTNERS) -> Served:
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    shutil.copytree(source, home)
    server = start_server(home, root / "logs")
    try:
        # one at a time: concurrent `partner token` runs can fail with "database is locked" (see
        # test_partner_token_while_the_server_meters_requests)
        profiles = {p: make_profile(server, p, root / f"{p}.share") for p in partners}
    except BaseException:
        server.stop()
        raise
    return Served(world, server, profiles, root)
