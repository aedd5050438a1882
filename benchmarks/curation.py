"""Curation throughput: two worker processes vs one, measured in the same run, and the re-run.

    python -m benchmarks.curation [--posts 100000] [--seed 7]

Builds a platform with `datalease.platform.generate.generate_platform` (`--posts` / 10 users, seed
`--seed`), ingests users and posts into a fresh lake in a temporary folder, then times:

* baseline  — `curate(lake, workers=1)`: every live post scrubbed and scored in this process
* workers=2 — the same curation (curated table dropped first) with a pool of two spawned processes
* re-run    — `curate(lake, workers=2)` again with nothing changed: only the sha256 comparison

and prints posts/s for both, the ratio workers=2 / workers=1 (throughput), and the re-run time.
CPU seconds (this process plus the pool's processes) are printed too: on a shared machine the
wall-clock ratio depends on what else runs, the CPU figures show the pool's own overhead.

Texts: when ../shared/data/tweeteval-sentiment exists, the fixed *train* split of the shared README
(`val_text.txt` then lines 1–10,000 of `test_text.txt`, 12,000 tweets) in that order, cycled over
the posts; otherwise the built-in generator. Authors: the generator's Zipf–Mandelbrot law
(`zipf_weights`: P(rank r) ∝ 1/(r + 10)^1.2 with ranks shuffled by `numpy.random.default_rng([seed,
2])`); about 2% of posts are deleted and are not curated.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from datalease.platform.curate import CurateResult, curate
from datalease.platform.generate import POSTS_PER_USER, generate_platform
from datalease.platform.ingest import ingest_file
from datalease.platform.lake import CURATED_POSTS, Lake

TWEETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tweeteval-sentiment"
TRAIN_FROM_TEST = 10_000

T = TypeVar("T")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=100_000, help="posts to generate (rounded up to 10s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="datalease-curation-") as folder:
        run(Path(folder), max(1, -(-args.posts // POSTS_PER_USER)), args.seed)


def run(work: Path, users: int, seed: int) -> None:
    """Generate, ingest, and time the three curation runs under `work`."""
    posts_file, source = train_split(work)
    inputs = generate_platform(work / "input", users=users, seed=seed, posts_file=posts_file)
    lake = Lake(work / "lake")
    ingested, ingest = timed(lambda: [ingest_file(lake, name, inputs[name]) for name in ("users", "posts")])
    print(f"posts: {ingested[1].accepted:,} ({source}); ingest of users + posts {ingest.wall:.1f} s")
    print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    baseline, one = timed(lambda: curate(lake, workers=1))
    shutil.rmtree(lake.path(CURATED_POSTS))
    parallel, two = timed(lambda: curate(lake, workers=2))
    rerun, again = timed(lambda: curate(lake, workers=2))

    print(f"workers=1 (baseline): {describe(baseline, one)}")
    print(f"workers=2:            {describe(parallel, two)}")
    print(f"ratio workers=2 / workers=1: {one.wall / two.wall:.2f}x")
    print(
        f"re-run, nothing changed: {again.wall:.2f} s (curated {rerun.curated}, unchanged {rerun.unchanged:,})"
    )


def train_split(work: Path) -> tuple[Path | None, str]:
    """The TweetEval train split written to one file, or None (built-in texts) when it is absent."""
    if not TWEETS.exists():
        return None, "built-in generated texts"
    validation = (TWEETS / "val_text.txt").read_text(encoding="utf-8").splitlines()
    test = (TWEETS / "test_text.txt").read_text(encoding="utf-8").splitlines()[:TRAIN_FROM_TEST]
    path = work / "train_text.txt"
    path.write_text("\n".join([*validation, *test]) + "\n", encoding="utf-8")
    return path, f"TweetEval train split, {len(validation) + len(test):,} tweets cycled"


def describe(result: CurateResult, timing: Timing) -> str:
    """One line: posts, seconds, posts/s and CPU seconds."""
    rate = result.curated / timing.wall
    return f"{result.curated:,} posts in {timing.wall:.1f} s = {rate:,.0f} posts/s (CPU {timing.cpu:.1f} s)"


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds, and CPU seconds of this process plus its finished children (the pool)."""

    wall: float
    cpu: float


def timed(work: Callable[[], T]) -> tuple[T, Timing]:
    """Run `work` and return its value with the wall-clock and CPU time it took."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    value = work()
    return value, Timing(time.perf_counter() - wall, _cpu_seconds() - cpu)


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
