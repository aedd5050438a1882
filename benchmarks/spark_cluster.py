"""A real Spark standalone cluster on 127.0.0.1: a master and workers started from the PySpark
install's `bin/spark-class` (one core and little memory each), for the benchmark and the tests
(tests/releases/test_spark_cluster.py).

`SPARK_CONF_DIR` points at a spark-defaults.conf holding `conf`: that is how a build started by the
`datalease` command gets Spark settings it does not set itself (the same file works in production).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyspark

from datalease.platform.lake import register_delta

SPARK_HOME = Path(pyspark.__file__).parent
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
DAEMON_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    master_url: str
    ui_url: str
    env: dict[str, str]  # what a driver process needs (SPARK_CONF_DIR, SPARK_LOCAL_IP)
    processes: tuple[subprocess.Popen[bytes], ...]

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=10) as answer:
            return dict(json.load(answer))


def spark_env(directory: Path, conf: Mapping[str, str]) -> dict[str, str]:
    conf_dir = directory / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in conf.items()))
    return {
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(directory / "logs"),
    }


@contextmanager
def standalone_cluster(
    directory: Path, *, workers: int = 2, memory: str = "512m", conf: Mapping[str, str] | None = None
) -> Iterator[Cluster]:
    """Start a master and `workers` one-core workers; stop them (by process) on exit."""
    env = spark_env(directory, conf or {})
    daemon_env = {
        **os.environ,
        **env,
        "SPARK_DAEMON_JAVA_OPTS": DAEMON_JAVA_OPTS,
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_WORKER_DIR": str(directory / "work"),
    }
    port, ui_port = free_port(), free_port()
    master_url, ui_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    master_command = [str(SPARK_CLASS), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
    worker_command = [str(SPARK_CLASS), "org.apache.spark.deploy.worker.Worker", master_url, "--host"]
    worker_command += ["127.0.0.1", "--cores", "1", "--memory", memory]
    log = (directory / "cluster.log").open("ab")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            subprocess.Popen(
                [*master_command, "--port", str(port), "--webui-port", str(ui_port)],
                env=daemon_env,
                stdout=log,
                stderr=log,
            )
        )
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    [
                        *worker_command,
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(directory / "work"),
                    ],
                    env=daemon_env,
                    stdout=log,
                    stderr=log,
                )
            )
        cluster = Cluster(master_url, ui_url, env, tuple(processes))
        _wait_for_workers(cluster, workers, directory / "cluster.log")
        yield cluster
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def _wait_for_workers(cluster: Cluster, workers: int, log: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if int(cluster.status().get("aliveworkers", 0)) >= workers:
                return
        except OSError:
            pass
        if any(p.poll() is not None for p in cluster.processes):
            raise RuntimeError(f"a cluster process exited:\n{log.read_text()[-3000:]}")
        time.sleep(1)
    raise RuntimeError(f"{workers} workers did not register within {timeout_s} s:\n{log.read_text()[-3000:]}")


# --- for benchmarks/releases.py --engine spark ---------------------------------------------------


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (the JVM is the build's child)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        rss[int(entry.name)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


def run_tree(args: list[str], env: Mapping[str, str]) -> tuple[float, int, str]:
    """Run a command; (seconds, peak RSS of its whole process tree sampled every 0.2 s, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.2)
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out}\n{err[-4000:]}")
    return seconds, peak, out


def sibling_home(home: Path, target: Path) -> Path:
    """A second home over the same lake (symlinked), store and keys (copied), without shares."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for entry in home.iterdir():
        if entry.name == "lake":
            (target / "lake").symlink_to(entry.resolve(), target_is_directory=True)
        elif entry.name not in ("shares", "tmp"):
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, target / entry.name)
    return target


def rows_differ(left: Path, right: Path) -> int:
    """Rows in one Delta table and not the other (EXCEPT ALL both ways, all columns, bucket included)."""
    con = duckdb.connect()
    for name, path in (("a", left), ("b", right)):
        register_delta(con, name, path, partitioned=True)
    columns = ", ".join(f'"{c}"' for c in con.sql("SELECT * FROM a LIMIT 0").columns)
    sql = (
        f"SELECT count(*) FROM ((SELECT {columns} FROM a EXCEPT ALL SELECT {columns} FROM b) "
        f"UNION ALL (SELECT {columns} FROM b EXCEPT ALL SELECT {columns} FROM a))"
    )
    return int(con.sql(sql).fetchall()[0][0])
