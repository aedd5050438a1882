"""Fixtures of the page tests: a demo world (built once per worker with `datalease demo`), a real
`datalease serve` with demo sign-in on a loopback port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("DATALEASE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def datalease_command() -> str:
    return str(Path(sys.executable).with_name("datalease"))


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DATALEASE_") or k == "DATALEASE_TEST_ARTIFACTS"
    }
    env.update({"DATALEASE_HOME": str(home), "DATALEASE_WORKERS": "1", "COLUMNS": "200"}, **extra)
    return env


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [datalease_command(), *args],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("web-demo") / "home"
    done = run(home, "demo", "--users", "300", "--no-serve")
    assert done.returncode == 0, done.stderr[-4000:]
    return home


@dataclass
class Site:
    home: Path
    base: str
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def site(demo_home: Path, tmp_path: Path) -> Iterator[Site]:
    """A served copy of the demo world (tests change settings), demo sign-in on, worker on."""
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [datalease_command(), "serve", "--port", str(port)],
            env=env_for(home, DATALEASE_DEMO_LOGIN="true", DATALEASE_REVOCATION_WINDOW_S="0.2"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(base + "/login", timeout=2).status_code == 200:
                break
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        time.sleep(0.1)
    else:
        raise AssertionError("the server did not answer:\n" + log.read_text())
    yield Site(home, base, process, log)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()
