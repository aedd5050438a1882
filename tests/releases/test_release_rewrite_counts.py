"""`delta.rewrite`'s one pass over the candidate files: whatever the changes, the table afterwards
holds exactly the kept rows plus the upserts, and the counts it reports (rows removed = deletes and
updates that matched a row; rows added = upserts; files removed = files that held a matched row)
are the ones a set computation gives."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalease.releases import delta

COLUMNS = ("user_key", "post_key", "bucket", "n")
IDENTITY = ("user_key", "post_key")
BUCKETS = "ab"
Row = tuple[str, str, str, int]

rows = st.dictionaries(
    st.tuples(st.sampled_from("uvw"), st.sampled_from("pqr"), st.sampled_from(BUCKETS)),
    st.integers(0, 3),
    max_size=10,
)
changes = st.dictionaries(
    st.tuples(st.sampled_from("uvw"), st.sampled_from("pqr"), st.sampled_from(BUCKETS)),
    st.one_of(st.none(), st.integers(0, 3)),  # None: delete; a value: upsert
    max_size=8,
)


def _table(data: list[Row], op: list[str] | None = None) -> pa.Table:
    types = (pa.string(), pa.string(), pa.string(), pa.int64())
    table = pa.table(
        {
            name: pa.array([r[i] for r in data], kind)
            for i, (name, kind) in enumerate(zip(COLUMNS, types, strict=True))
        }
    )
    return table if op is None else table.append_column(delta.OP, pa.array(op, pa.string()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(existing=rows, wanted=changes)
def test_rewrite_applies_the_changes_and_counts_them(
    existing: dict[tuple[str, str, str], int], wanted: dict[tuple[str, str, str], int | None]
) -> None:
    home = Path(tempfile.mkdtemp(prefix="rewrite-"))
    try:
        path = home / "t"
        con = duckdb.connect()
        # One file per bucket, as the release writer lays a table out.
        con.register("start", _table([(u, p, b, n) for (u, p, b), n in sorted(existing.items())]))
        delta.create(path, con, "SELECT * FROM start", commit_info={"test": "start"})
        files_before = {f.path: f.bucket for f in delta.table_files(path)}
        data = [(u, p, b, 0 if n is None else n) for (u, p, b), n in sorted(wanted.items())]
        ops = ["delete" if n is None else "upsert" for n in (wanted[k] for k in sorted(wanted))]
        con.register("wanted", _table(data, ops))
        stats = delta.rewrite(path, con, "wanted", COLUMNS, IDENTITY, commit_info={"test": "rewrite"})

        matched = {k for k in wanted if k in existing}
        after = {k: n for k, n in existing.items() if k not in wanted}
        after |= {k: n for k, n in wanted.items() if n is not None}
        got = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
        assert {(r["user_key"], r["post_key"], r["bucket"]): r["n"] for r in got} == after
        assert len(got) == len(after)
        assert stats.rows_removed == len(matched)
        assert stats.rows_added == sum(1 for n in wanted.values() if n is not None)
        hit_buckets = {b for (_, _, b) in matched}
        assert stats.files_removed == sum(1 for b in files_before.values() if b in hit_buckets)
        con.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
