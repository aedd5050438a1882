"""Metering through the per-process usage log (sharing/usagelog.py):

- a real `datalease serve` killed with SIGKILL right after its answers loses none of them: the next
  `datalease usage` folds the dead server's log (and deletes it) and counts every answered request,
  downloads' bytes included;
- folding is exactly-once whoever folds: concurrent folds of one live log, and a fold after the
  writer's own, count each line once; a line still being written is left for the next fold.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import requests
from cli_harness import expect, run
from sharing_world import HTTP_TIMEOUT, Server, file_urls
from small_home import AGREEMENT, PARTNER, SCHEMA, TABLE, SmallHome, settings

from datalease.services.sharing import usage
from datalease.sharing.model import Usage
from datalease.sharing.usagelog import UsageLog, fold, fold_all, usage_dir
from datalease.workspace import Workspace

QUERIES = 25


def test_a_kill_9_loses_nothing_answered(real_server: Callable[..., Server], home: SmallHome) -> None:
    server = real_server()
    base = f"{server.endpoint}/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{TABLE}"
    received = 0
    for i in range(QUERIES):
        answer = requests.post(f"{base}/query", json={}, headers=home.partner_headers, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 200, answer.text
        if i == 0:
            url = file_urls([json.loads(line) for line in answer.text.splitlines()])[0]
            received = len(requests.get(url, timeout=HTTP_TIMEOUT).content)
    version = requests.get(f"{base}/version", headers=home.partner_headers, timeout=HTTP_TIMEOUT)
    assert version.status_code == 200
    server.process.send_signal(signal.SIGKILL)
    assert server.process.wait(timeout=30) == -signal.SIGKILL
    logs = list(usage_dir(Workspace(settings(home.home))).glob("*.log"))
    assert logs, "the killed server left its usage log behind"
    totals = expect(run("usage", "--json", home=home.home), 0).json()
    (line,) = [t for t in totals if t["partner"] == PARTNER and t["agreement_id"] == AGREEMENT]
    assert line["queries"] == QUERIES
    assert line["requests"] == QUERIES + 1  # the /version call too
    assert line["bytes"] == received
    assert not any(p.exists() for p in logs), "a dead server's log is deleted once folded"


def test_each_line_is_folded_once_whoever_folds(home: SmallHome) -> None:
    ws = Workspace(settings(home.home))
    ws.init()
    log = UsageLog(ws)
    before = sum(t.requests for t in usage(ws))
    for _ in range(200):
        log.append(Usage(PARTNER, AGREEMENT, TABLE, "version"))
    with log.path.open("ab") as handle:  # a line still being written
        handle.write(b'["2026-01-01T00:00:00+00:00", "lumen')
    folders = [threading.Thread(target=fold_all, args=(ws,)) for _ in range(4)]
    for folder in folders:
        folder.start()
    log.fold_now()
    for folder in folders:
        folder.join()
    assert fold(ws, log.path) == 0
    assert sum(t.requests for t in usage(ws)) == before + 200
    assert log.path.exists(), "a live server's log is never deleted by another folder"
    ws.engine.dispose()


def test_usage_without_logs(tmp_path: Path) -> None:
    ws = Workspace(settings(tmp_path / "home"))
    ws.init()
    assert fold_all(ws) == 0 and usage(ws) == []
    ws.engine.dispose()
