"""Partner keys: the SQL that engines run equals HMAC-SHA256 in Python; nothing else identifies anyone."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from hypothesis import given, settings
from hypothesis import strategies as st
from release_oracle import RAW_ID_COLUMNS, master_key, pinned_contents, share_table
from release_world import AGREEMENTS, LUMEN, SENTIMETRICS, T0

from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases.keys import agreement_secret, hmac_sql, key_sql, partner_key
from datalease.services.releases import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace

ids = st.integers(min_value=0, max_value=2**63 - 1)
# Agreement secrets are 32 bytes; HMAC also defines longer keys (hashed first) and shorter ones.
secrets = st.binary(min_size=32, max_size=32) | st.binary(min_size=0, max_size=130)


def reference(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:32]


@settings(max_examples=60, deadline=None)
@given(
    secret=secrets,
    user_ids=st.lists(ids, min_size=1, max_size=40),
    post_ids=st.lists(ids, min_size=1, max_size=40),
)
def test_key_sql_in_duckdb_is_hmac_sha256(secret: bytes, user_ids: list[int], post_ids: list[int]) -> None:
    pairs = list(zip(user_ids, post_ids, strict=False))
    table = pa.table(
        {
            "user_id": pa.array([u for u, _ in pairs], pa.int64()),
            "post_id": pa.array([p for _, p in pairs], pa.int64()),
        }
    )
    con = duckdb.connect()
    try:
        con.register("ids", table)
        rows = con.execute(
            f"SELECT user_id, post_id, {key_sql(secret, 'user', 'user_id')}, {key_sql(secret, 'post', 'post_id')}, "
            f"{key_sql(secret, 'likes', 'user_id', 'post_id')} FROM ids"
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == len(pairs)
    for user_id, post_id, user_key, post_key, like_key in rows:
        assert user_key == reference(secret, f"user:{user_id}")
        assert post_key == reference(secret, f"post:{post_id}")
        assert like_key == reference(secret, f"likes:{user_id}:{post_id}")
        assert re.fullmatch(r"[0-9a-f]{32}", user_key)
        assert partner_key(secret, "user", user_id) == user_key


RFC_4231 = [
    # (key, message, HMAC-SHA256) — test cases 2 and 6 (a key longer than the block, hashed first)
    (
        b"Jefe",
        "what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 131,
        "Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
]


def test_the_sql_reproduces_rfc_4231_vectors() -> None:
    con = duckdb.connect()
    try:
        for key, message, expected in RFC_4231:
            got = con.execute(f"SELECT {hmac_sql(key, repr(message))}").fetchone()
            assert got is not None and got[0] == expected[:32]
    finally:
        con.close()


@given(
    agreement_id=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True),
    key=st.binary(min_size=32, max_size=64),
)
def test_agreement_secrets_are_hmac_of_the_master_key(agreement_id: str, key: bytes) -> None:
    expected = hmac.new(key, f"agreement:{agreement_id}".encode(), hashlib.sha256).digest()
    assert agreement_secret(key, agreement_id) == expected


def test_no_platform_identifier_in_any_version_of_any_table(world: Workspace) -> None:
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0)
    posts = world.lake.read("posts").to_pylist()
    world.ledger.record(posts[0]["author_id"], MASTER_KEY, False, at=T0)
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0 + timedelta(seconds=1))
    handles = set(world.lake.read("users").column("handle").to_pylist())
    texts = {p["text"] for p in posts}
    for agreement_id in AGREEMENTS:
        folder = world.settings.resolved_home / "shares" / agreement_id
        for table_dir in (p for p in folder.iterdir() if p.is_dir()):
            latest = DeltaTable(str(table_dir)).version()
            for version in range(latest + 1):
                table = DeltaTable(str(table_dir), version=version).to_pyarrow_table()
                assert not set(table.column_names) & RAW_ID_COLUMNS, (table_dir, version, table.column_names)
                for name in table.column_names:
                    if pa.types.is_string(table.schema.field(name).type):
                        values = set(table.column(name).to_pylist())
                        assert not values & handles, f"{table_dir.name}.{name}: handles"
                        if name != "text":
                            assert not values & texts, f"{table_dir.name}.{name}: raw post texts"
        card = (folder / "README.md").read_text()
        assert not any(h in card for h in handles)


def test_keys_differ_per_agreement(world: Workspace) -> None:
    """A partner cannot link its rows to another partner's: the same people have other keys."""
    for agreement_id in (LUMEN, SENTIMETRICS):
        build_release(world, agreement_id, at=T0)
    keys = {}
    with world.session() as session:
        for agreement_id in (LUMEN, SENTIMETRICS):
            release = latest_release(session, agreement_id)
            assert release is not None
            contents = pinned_contents(world, release)["posts"]
            keys[agreement_id] = {dict(r)["user_key"] for r in contents} | {
                dict(r)["post_key"] for r in contents
            }
    assert keys[LUMEN] and keys[SENTIMETRICS]
    assert not keys[LUMEN] & keys[SENTIMETRICS]
    # …and each is the HMAC under that agreement's own secret.
    secret = hmac.new(master_key(world), f"agreement:{LUMEN}".encode(), hashlib.sha256).digest()
    author = world.lake.read("posts").to_pylist()[0]["author_id"]
    assert agreement_secret(world.master_key, LUMEN) == secret
    assert reference(secret, f"user:{author}") == partner_key(secret, "user", author)
    assert share_table(world, LUMEN, "posts").exists()
