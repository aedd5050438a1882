"""The `ledger_head` table in-process (issue 15, item 5): its writer, the copies `consent verify
--anchor` accepts, what it is not (billed data), and the partner kit's merge of it.

Proves: each append adds one row in plain Arrow types (what the official client's pandas path reads);
a build that died after its ledger_head commit is undone before the next row (restored to the pinned
version, or overwritten when no release pins the table yet); a folder that is not a ledger_head table,
or one whose columns are missing or ill-typed, is refused naming the column (exit 2 on the CLI); the
table's rows are never counted as records delivered or record-days; and partnerkit's copy keeps every
row it holds whatever the server serves later (Hypothesis), naming each release whose row changed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from hypothesis import given, settings
from hypothesis import strategies as st
from release_world import run_cli

from datalease.billing.invoices import delivered
from datalease.billing.period import parse_period
from datalease.billing.recorddays import holdings
from datalease.config import Settings
from datalease.errors import UserError
from datalease.releases import delta, ledger_head
from datalease.releases.model import KIND_BUILD, Release, ReleaseTable
from datalease.releases.support_tables import FORGET, LEDGER_HEAD, is_licensed_data
from datalease.services.anchors import verify_anchors
from datalease.workspace import Workspace
from partnerkit.witness import merge

T0 = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
HASH = "ab" * 32
INFO = delta.commit_info("a1", KIND_BUILD)


def release(release_id: int, seq: int, tables: tuple[ReleaseTable, ...] = ()) -> Release:
    return Release(
        release_id=release_id,
        agreement_id="a1",
        built_at=T0 + timedelta(hours=release_id),
        as_of=T0 + timedelta(hours=release_id),
        policy_revision_id=1,
        policy_version="2024-11",
        agreement_sha256="0" * 64,
        consent_watermark=seq,
        source_versions={},
        engine="duckdb",
        full_build=True,
        duration_ms=1,
        excluded={},
        excluded_sample_every=1,
        tables=tables or (ReleaseTable("posts", release_id, 10, 10, 0, 1, 0),),
        consent_head_hash=HASH,
    )


def append(path: Path, release_id: int, pinned: ReleaseTable | None) -> ReleaseTable:
    row = ledger_head.head_row(release(release_id, release_id * 3), release_id)
    return ledger_head.append_head(path, row, pinned=pinned, commit_info=INFO)


def ids(path: Path, version: int | None = None) -> list[int]:
    return sorted(DeltaTable(str(path), version=version).to_pyarrow_table()["release_id"].to_pylist())


def test_each_build_appends_one_plain_typed_row(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_HEAD
    first = append(path, 1, None)
    second = append(path, 2, first)
    assert (first.table_version, first.rows_total, second.table_version, second.rows_total) == (0, 1, 1, 2)
    assert second == ReleaseTable(LEDGER_HEAD, 1, 2, 1, 0, 1, 0)
    rows = DeltaTable(str(path)).to_pyarrow_table()
    assert rows.schema == ledger_head.SCHEMA  # string, int64, timestamp[us, UTC]: no view types
    row = rows.sort_by("release_id").to_pylist()[1]
    assert (row["consent_seq"], row["consent_hash"], row["kind"]) == (6, HASH, "build")
    assert json.loads(row["table_versions"]) == {"posts": 2}


def test_a_dead_builds_row_is_undone_before_the_next(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_HEAD
    pinned = append(path, 1, None)
    append(path, 2, pinned)  # committed to Delta, its release row never was
    again = append(path, 2, pinned)  # the rerun (SQLite hands out the same id again)
    assert ids(path, again.table_version) == [1, 2] and again.rows_total == 2
    # The first build with the table died: no release pins it, so its rows all go.
    fresh = tmp_path / "fresh" / LEDGER_HEAD
    append(fresh, 5, None)
    assert ids(fresh, append(fresh, 6, None).table_version) == [6]


def test_support_tables_are_not_billed_or_held_as_records() -> None:
    assert not is_licensed_data(LEDGER_HEAD) and not is_licensed_data(FORGET) and is_licensed_data("posts")
    tables = (
        ReleaseTable("posts", 0, 10, 10, 0, 1, 0),
        ReleaseTable(LEDGER_HEAD, 0, 1, 1, 0, 1, 0),
        ReleaseTable(FORGET, 0, 2, 2, 0, 1, 0),
    )
    built = release(1, 3, tables)
    assert delivered([built], parse_period("2026-06")) == [(1, 10)]
    [held] = holdings([built], parse_period("2026-06"))
    assert held.versions == (("posts", 0),)


# --- what `consent verify --anchor` accepts -------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(Settings(home=tmp_path / "home", database_url=None, master_key=None, workers=1))
    for minute in range(3):
        workspace.ledger.record(
            7, "purpose.train_ai_system", minute % 2 == 0, at=T0 + timedelta(minutes=minute)
        )
    return workspace


def witness(ws: Workspace, path: Path, **columns: pa.Array) -> Path:
    seq, hash_ = ws.ledger.head()
    table = {"release_id": pa.array([1]), "consent_seq": pa.array([seq]), "consent_hash": pa.array([hash_])}
    table.update(columns)
    write_deltalake(str(path), pa.table(table))
    return path


def test_every_form_of_a_partners_copy_is_an_anchor(ws: Workspace, tmp_path: Path) -> None:
    table = witness(ws, tmp_path / "delta")
    frame = DeltaTable(str(table)).to_pandas()
    frame.to_parquet(tmp_path / "copy.parquet")
    (tmp_path / "kit").mkdir()
    frame.to_parquet(tmp_path / "kit" / "ledger_head.parquet")  # a partnerkit directory
    (tmp_path / "export.json").write_text(frame.to_json(orient="records"))
    (tmp_path / "export.csv").write_text(frame.to_csv(index=False))
    copies = [
        table,
        tmp_path / "copy.parquet",
        tmp_path / "kit",
        tmp_path / "export.json",
        tmp_path / "export.csv",
    ]
    check = verify_anchors(ws, copies)
    assert (check.checked, check.problems) == (5, [])
    # A head the ledger never reached is named from every form.
    late = pd.DataFrame({"release_id": [2], "consent_seq": [9], "consent_hash": [HASH]})
    late.to_parquet(tmp_path / "late.parquet")
    (tmp_path / "late.json").write_text(late.to_json(orient="records"))
    problems = verify_anchors(ws, [tmp_path / "late.parquet", tmp_path / "late.json"]).problems
    assert [p.kind for p in problems] == ["truncated", "truncated"]
    assert problems[0].message.startswith(
        f"truncated: {tmp_path / 'late.parquet'} (ledger_head, release 2) records"
    )


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"consent_seq": None}, "column consent_seq is missing (expected a whole number)"),
        ({"release_id": None}, "column release_id is missing (expected a whole number)"),
        ({"consent_seq": pa.array(["3"])}, "column consent_seq is string, expected a whole number"),
        ({"consent_hash": pa.array([3])}, "column consent_hash is int64, expected text (64 hex digits)"),
        ({"consent_hash": pa.array(["nothex"])}, "consent_hash: expected 64 hex digits, got 'nothex'"),
        ({"consent_seq": pa.array([-1])}, "consent_seq: expected a whole number, got -1"),
    ],
    ids=["no-seq", "no-release-id", "seq-text", "hash-number", "hash-not-hex", "seq-negative"],
)
def test_an_ill_formed_copy_is_refused_naming_the_column(
    ws: Workspace, tmp_path: Path, columns: dict[str, pa.Array | None], message: str
) -> None:
    path = tmp_path / "copy"
    seq, hash_ = ws.ledger.head()
    table = {"release_id": pa.array([1]), "consent_seq": pa.array([seq]), "consent_hash": pa.array([hash_])}
    for name, values in columns.items():
        if values is None:
            del table[name]
        else:
            table[name] = values
    write_deltalake(str(path), pa.table(table))
    with pytest.raises(UserError, match=f"^--anchor {re.escape(str(path))}[ :].*{re.escape(message)}$"):
        verify_anchors(ws, [path])


def test_a_folder_that_is_no_ledger_head_table_is_refused(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a ledger_head table: expected a Delta table"):
        verify_anchors(ws, [tmp_path / "empty"])
    write_deltalake(str(tmp_path / "posts"), pa.table({"post_key": ["k"], "text": ["t"]}))
    with pytest.raises(UserError, match="not a ledger_head table: column release_id is missing"):
        verify_anchors(ws, [tmp_path / "posts"])
    empty = pa.table({"release_id": pa.array([], pa.int64()), "consent_seq": pa.array([], pa.int64())})
    write_deltalake(str(tmp_path / "no-rows"), empty.append_column("consent_hash", pa.array([], pa.string())))
    with pytest.raises(UserError, match="has no rows"):
        verify_anchors(ws, [tmp_path / "no-rows"])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="not a readable ledger_head table"):
        verify_anchors(ws, [tmp_path / "junk.parquet"])
    ws.engine.dispose()
    refused = run_cli(ws.settings.resolved_home, "consent", "verify", "--anchor", str(tmp_path / "posts"))
    assert refused.returncode == 2 and "column release_id is missing" in refused.stderr, refused


# --- partnerkit's copy ----------------------------------------------------------------------------

ROWS = st.dictionaries(
    st.integers(1, 30), st.tuples(st.integers(0, 50), st.sampled_from(["a" * 64, "b" * 64]))
)


def frame(rows: dict[int, tuple[int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "release_id": pd.Series(list(rows), dtype="int64"),
            "consent_seq": pd.Series([s for s, _ in rows.values()], dtype="int64"),
            "consent_hash": pd.Series([h for _, h in rows.values()], dtype=object),
        }
    )


@settings(max_examples=200, deadline=None)
@given(held=ROWS, served=ROWS)
def test_the_partners_copy_never_gives_up_a_row_it_holds(
    held: dict[int, tuple[int, str]], served: dict[int, tuple[int, str]]
) -> None:
    rows, added, conflicts = merge(frame(held) if held else None, frame(served))
    kept = {int(r.release_id): (int(r.consent_seq), r.consent_hash) for r in rows.itertuples()}
    assert kept == {**served, **held}  # held rows win, served ones join
    assert added == len(set(served) - set(held))
    assert set(conflicts) == {i for i in held if served.get(i) != held[i]}
    assert list(rows["release_id"]) == sorted(kept)
