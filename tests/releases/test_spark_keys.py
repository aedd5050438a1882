"""Partner keys in Spark SQL: the generated HMAC-SHA256 equals Python's `hmac` and the RFC 4231 test
vectors (truncated to the 128 bits a key keeps), and DuckDB's key SQL is what it always was."""

from __future__ import annotations

import hashlib
import hmac
import random

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from spark_world import spark  # noqa: F401  (the session fixture)

from datalease.policy.compile import DUCKDB, SPARK
from datalease.releases.keys import KEY_HEX_CHARS, hmac_sql, key_sql

pytestmark = pytest.mark.spark

# RFC 4231 section 4, HMAC-SHA-256: (key, data, expected MAC). Case 5's MAC is itself truncated.
RFC_4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. The key "
        b"needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


def unhex(data: bytes) -> str:
    return f"unhex('{data.hex()}')"


def reference(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]


def test_rfc_4231_vectors_in_spark_and_duckdb(spark: SparkSession) -> None:  # noqa: F811
    expected = [mac[:KEY_HEX_CHARS] for _, _, mac in RFC_4231]
    assert [hmac.new(k, m, hashlib.sha256).hexdigest()[:KEY_HEX_CHARS] for k, m, _ in RFC_4231] == expected
    spark_sql = " UNION ALL ".join(
        f"SELECT {n} AS n, {hmac_sql(key, unhex(data), SPARK)} AS mac"
        for n, (key, data, _) in enumerate(RFC_4231)
    )
    got = [r["mac"] for r in sorted(spark.sql(spark_sql).collect(), key=lambda r: r["n"])]
    assert got == expected
    duck_sql = " UNION ALL ".join(
        f"SELECT {n} AS n, {hmac_sql(key, unhex(data), DUCKDB)} AS mac"
        for n, (key, data, _) in enumerate(RFC_4231)
    )
    assert [r[1] for r in sorted(duckdb.sql(duck_sql).fetchall())] == expected


def test_spark_keys_equal_python_hmac_over_many_secrets_and_ids(spark: SparkSession) -> None:  # noqa: F811
    """Secret lengths on both sides of the 64-byte block (longer ones are hashed first), ids at the
    edges of BIGINT, two-part messages (likes): one Spark query, every row equal to `hmac`."""
    rng = random.Random(4231)
    cases = []
    for length in (0, 1, 31, 32, 33, 63, 64, 65, 100, 131):
        secret = rng.randbytes(length)
        for ids in ((0,), (1,), (2**63 - 1,), (-(2**63),), (rng.randrange(2**62),), (7, 2**40)):
            cases.append((secret, ids))
    rows = []
    for n, (secret, ids) in enumerate(cases):
        literals = ", ".join(f"CAST({i} AS BIGINT) AS c{j}" for j, i in enumerate(ids))
        columns = [f"c{j}" for j in range(len(ids))]
        kind = "user" if len(ids) == 1 else "likes"
        rows.append(
            f"SELECT {n} AS n, {key_sql(secret, kind, *columns, dialect=SPARK)} AS k FROM (SELECT {literals})"
        )
    got = {r["n"]: r["k"] for r in spark.sql(" UNION ALL ".join(rows)).collect()}
    for n, (secret, ids) in enumerate(cases):
        kind = "user" if len(ids) == 1 else "likes"
        assert got[n] == reference(secret, ":".join([kind, *map(str, ids)])), (len(secret), ids)


@settings(max_examples=5, deadline=None)
@given(secret=st.binary(min_size=0, max_size=130), text=st.text(max_size=80))
def test_spark_hmac_of_any_text_is_python_hmac(spark: SparkSession, secret: bytes, text: str) -> None:  # noqa: F811
    """Any UTF-8 message (the SQL casts the string to its UTF-8 bytes, as `str.encode` does)."""
    literal = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    (row,) = spark.sql(f"SELECT {hmac_sql(secret, literal, SPARK)} AS k").collect()
    assert row["k"] == reference(secret, text)


def test_duckdb_key_sql_is_unchanged() -> None:
    """DuckDB's generated SQL is byte for byte what it was before Spark had a dialect."""
    secret = bytes(range(32))
    inner = bytes(b ^ 0x36 for b in secret.ljust(64, b"\0")).hex()
    outer = bytes(b ^ 0x5C for b in secret.ljust(64, b"\0")).hex()
    message = "'user:' || CAST(user_id AS VARCHAR)"
    assert key_sql(secret, "user", "user_id") == (
        f"substr(sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || CAST({message} AS BLOB)))), 1, 32)"
    )
    assert key_sql(secret, "user", "user_id", dialect=SPARK) == (
        f"substr(sha2(concat(unhex('{outer}'), unhex(sha2(concat(unhex('{inner}'), "
        f"CAST({message.replace('VARCHAR', 'STRING')} AS BINARY)), 256))), 256), 1, 32)"
    )
