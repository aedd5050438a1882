"""A released platform for the partner-side tests, served by a real `datalease serve`.

The world is the release tests' (tests/releases/release_world.py: 200 generated users, the x-2024
policy, three partners) with one release of lumen-genai-2025 (posts and reposts). The partner is
lumen-labs; its profile comes from `datalease partner token`. `partnerkit` always runs as its own
console script in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cli_harness import expect, run
from deltalake import DeltaTable
from release_world import LUMEN, T0, build_world, workspace
from sharing_world import Profile, Server, make_profile, start_server

from datalease.releases.keys import agreement_secret, user_key
from datalease.services.releases import build_release
from home_database import copy_home_tree

PARTNERKIT: Final = Path(sys.executable).with_name("partnerkit")
PARTNER: Final = "lumen-labs"
POSTS: Final = f"{LUMEN}.platform.posts"


@dataclass(frozen=True)
class Released:
    home: Path
    keys: dict[int, str]  # user id -> user_key in lumen-genai-2025
    posts_per_key: dict[str, int]  # user_key -> rows in the released posts table
    reposters_without_posts: tuple[int, ...]  # users with reposts but no post in the release

    def user_of(self, key: str) -> int:
        return next(u for u, k in self.keys.items() if k == key)


def build_released(root: Path) -> Released:
    home = root / "home"
    build_world(home)
    ws = workspace(home)
    build_release(ws, LUMEN, at=T0)
    secret = agreement_secret(ws.master_key, LUMEN)
    users = ws.lake.read("users").column("user_id").to_pylist()
    ws.engine.dispose()
    keys = {int(u): user_key(secret, u) for u in users}
    share = home / "shares" / LUMEN
    posts = Counter(DeltaTable(str(share / "posts")).to_pyarrow_table().column("user_key").to_pylist())
    reposters = set(DeltaTable(str(share / "reposts")).to_pyarrow_table().column("user_key").to_pylist())
    without = tuple(sorted(u for u, k in keys.items() if k in reposters and k not in posts))
    return Released(home, keys, dict(posts), without)


@dataclass
class Partner:
    """A running server on a copy of the world, the partner's profile and its working directory."""

    released: Released
    server: Server
    profile: Profile
    directory: Path

    @property
    def home(self) -> Path:
        return self.server.home

    def kit(self, *args: str | Path, check: int | None = 0) -> subprocess.CompletedProcess[str]:
        """`partnerkit ARGS…` (HF_HUB_OFFLINE=1: nothing is downloaded)."""
        proc = subprocess.run(
            [str(PARTNERKIT), *(str(a) for a in args)],
            capture_output=True,
            text=True,
            timeout=300,
            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(self.directory.parent)},
            check=False,
        )
        if check is not None:
            assert proc.returncode == check, (
                f"partnerkit {args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def sync(self) -> str:
        return self.kit("sync", self.profile.path, "--table", POSTS, "--dir", self.directory).stdout

    def forget(self, *extra: str) -> str:
        return self.kit("forget", "--dir", self.directory, self.profile.path, *extra).stdout

    def opt_out(self, user: int) -> None:
        expect(run("consent", "set", str(user), "share_with_partners", "false", home=self.home), 0)
        expect(run("revoke", "process", home=self.home), 0)

    def datalease_json(self, *args: str) -> Any:
        return json.loads(expect(run(*args, "--json", home=self.home), 0).out)

    def certificates(self) -> list[Path]:
        return sorted((self.directory / "certificates").glob("certificate-*Z.json"))


def start_partner(released: Released, root: Path) -> Partner:
    home = root / "home"
    copy_home_tree(released.home, home)
    server = start_server(home, root / "logs")
    try:
        profile = make_profile(server, PARTNER, root / f"{PARTNER}.share")
    except BaseException:
        server.stop()
        raise
    return Partner(released, server, profile, root / "partner")
