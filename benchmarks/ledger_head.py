"""What the `ledger_head` table adds to each build: one small Delta append (`releases.ledger_head
.append_head`) made inside the release row's transaction, vs the forget table's one-entry append
(`revocation.forget_table.write_forget`), the commit every revocation batch already makes, in the
same run on the same disk.

    python -m benchmarks.ledger_head [--builds 200]

Each side appends `--builds` times to its own growing table (the ledger_head pinned at its previous
version, as a build does); prints the median and p95 milliseconds of each and the ratio of the
medians (ledger_head / forget). Then reads the resulting ledger_head back as a partner's copy
(`read_witness`, what `consent verify --anchor DIR` does before checking the ledger) and prints its
milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from datalease.releases import delta, ledger_head
from datalease.releases.model import KIND_BUILD, KIND_REVOCATION, Release, ReleaseTable
from datalease.revocation.forget_table import write_forget
from datalease.revocation.model import ForgetEntry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _release(release_id: int) -> Release:
    return Release(
        release_id=release_id,
        agreement_id="bench-2026",
        built_at=T0 + timedelta(hours=release_id),
        as_of=T0 + timedelta(hours=release_id),
        policy_revision_id=1,
        policy_version="2024-11",
        agreement_sha256="0" * 64,
        consent_watermark=release_id * 1000,
        source_versions={},
        engine="duckdb",
        full_build=False,
        duration_ms=0,
        excluded={},
        excluded_sample_every=1,
        tables=(ReleaseTable("posts", release_id, 1, 1, 0, 1, 0),),
        consent_head_hash=f"{release_id:064x}",
    )


def _entry(n: int) -> ForgetEntry:
    return ForgetEntry(
        forget_id=f"f{n:08d}",
        agreement_id="bench-2026",
        partner="bench",
        intent_id=n,
        release_id=n,
        scope="user",
        subject_key=f"{n:064x}",
        rows=1,
        reason_code="opted_out",
        requested_at=T0 + timedelta(minutes=n),
        delivered_at=T0 + timedelta(minutes=n),
        deadline=T0 + timedelta(days=1, minutes=n),
        acked_at=None,
        certificate=None,
    )


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        head_path, forget_path = root / "ledger_head", root / "forget"
        head_info = delta.commit_info("bench-2026", KIND_BUILD)
        forget_info = delta.commit_info("bench-2026", KIND_REVOCATION)
        heads: list[float] = []
        forgets: list[float] = []
        pinned: ReleaseTable | None = None
        for n in range(1, args.builds + 1):  # interleaved, so both see the same machine
            started = time.perf_counter()
            pinned = ledger_head.append_head(
                head_path, ledger_head.head_row(_release(n), n), pinned=pinned, commit_info=head_info
            )
            heads.append(time.perf_counter() - started)
            started = time.perf_counter()
            write_forget(forget_path, [_entry(n)], forget_info)
            forgets.append(time.perf_counter() - started)
        started = time.perf_counter()
        rows = ledger_head.read_witness(head_path).num_rows
        read_ms = (time.perf_counter() - started) * 1000
    (head_median, head_p95), (forget_median, forget_p95) = _ms(heads), _ms(forgets)
    print(f"ledger_head append: median {head_median:.1f} ms, p95 {head_p95:.1f} ms ({args.builds} builds)")
    print(f"forget append (baseline): median {forget_median:.1f} ms, p95 {forget_p95:.1f} ms")
    print(f"ratio ledger_head / forget (medians): {head_median / forget_median:.2f}")
    print(f"read_witness of {rows} rows (the partner's copy): {read_ms:.1f} ms")


if __name__ == "__main__":
    main()
