"""The subjects revoked while a build ran, as SQL any engine runs: their ids come in as three small
relations (`withheld_user_ids`, `withheld_post_ids`, `withheld_pair_ids`), the engine materialises
their keys (`withheld_users`, `withheld_posts`, `withheld_pairs`) and `without_withheld` keeps their
rows out of what a build writes (the revocation worker withdraws whatever of theirs is shared)."""

from __future__ import annotations

import pyarrow as pa

from datalease.policy.compile import DUCKDB, Dialect
from datalease.releases import delta
from datalease.releases.changes import Withheld
from datalease.releases.keys import key_sql


def withheld_ids(late: Withheld) -> dict[str, pa.Table]:
    """The revoked ids, by the relation name the engine registers them under."""
    return {
        "withheld_user_ids": pa.table({"user_id": pa.array(late.users, pa.int64())}),
        "withheld_post_ids": pa.table({"post_id": pa.array(late.posts, pa.int64())}),
        "withheld_pair_ids": pa.table(
            {
                "user_id": pa.array([u for u, _ in late.pairs], pa.int64()),
                "post_id": pa.array([q for _, q in late.pairs], pa.int64()),
            }
        ),
    }


def withheld_keys_sql(secret: bytes, dialect: Dialect = DUCKDB) -> list[tuple[str, str]]:
    """(name, SQL) of the withheld keys, in order, over the ids and the lake's `posts`."""
    user_key = key_sql(secret, "user", "user_id", dialect=dialect)
    post_key = key_sql(secret, "post", "post_id", dialect=dialect)
    return [
        ("withheld_users", f"SELECT {user_key} AS user_key FROM withheld_user_ids"),
        (
            "withheld_posts",
            f"SELECT {post_key} AS post_key FROM ("
            "SELECT post_id FROM withheld_post_ids UNION "
            "SELECT post_id FROM posts WHERE author_id IN (SELECT user_id FROM withheld_user_ids))",
        ),
        (
            "withheld_pairs",
            f"SELECT {user_key} AS user_key, {post_key} AS post_key FROM withheld_pair_ids",
        ),
    ]


def without_withheld(sql: str, columns: tuple[str, ...], *, keep_deletes: bool = False) -> str:
    conditions = []
    if "user_key" in columns:
        conditions.append("x.user_key IN (SELECT user_key FROM withheld_users)")
    if "post_key" in columns:
        conditions.append("x.post_key IN (SELECT post_key FROM withheld_posts)")
    if "user_key" in columns and "post_key" in columns:
        conditions.append("(x.user_key, x.post_key) IN (SELECT user_key, post_key FROM withheld_pairs)")
    if not conditions:
        return sql
    withheld = " OR ".join(conditions)
    keep = f"x.{delta.OP} = 'delete' OR " if keep_deletes else ""
    return f"SELECT * FROM ({sql}) AS x WHERE {keep}NOT ({withheld})"
