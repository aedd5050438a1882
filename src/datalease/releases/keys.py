"""Partner-visible keys: HMAC-SHA256(agreement secret, platform id), the lineage of every row.

The platform can always recompute a user's keys for an agreement and find exactly their rows; a
partner cannot go back from a key to an id, nor link keys across agreements. Keys are the first 128
bits of the HMAC, as 32 lowercase hex characters.

The same function is emitted as SQL (two sha256 calls over the padded key, RFC 2104) in each
engine's dialect so engines compute keys at scan speed; `hmac` in Python is the reference the tests hold the SQL to.
"""

from __future__ import annotations

import hashlib
import hmac

from datalease.policy.compile import DUCKDB, Dialect

KEY_HEX_CHARS = 32
_BLOCK = 64


def agreement_secret(master_key: bytes, agreement_id: str) -> bytes:
    """The per-agreement secret, derived so that no secret needs storing beside the data."""
    return hmac.new(master_key, f"agreement:{agreement_id}".encode(), hashlib.sha256).digest()


def subject_text(kind: str, *ids: int) -> str:
    """The message that is keyed: `user:42`, `post:7`, `likes:42:7`."""
    return ":".join([kind, *(str(i) for i in ids)])


def partner_key(secret: bytes, kind: str, *ids: int) -> str:
    return hmac.new(secret, subject_text(kind, *ids).encode(), hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]


def user_key(secret: bytes, user_id: int) -> str:
    return partner_key(secret, "user", user_id)


def post_key(secret: bytes, post_id: int) -> str:
    return partner_key(secret, "post", post_id)


def hmac_sql(secret: bytes, message_sql: str, dialect: Dialect = DUCKDB) -> str:
    """SQL computing the same key as `partner_key` for a string message expression."""
    padded = (
        secret.ljust(_BLOCK, b"\0")
        if len(secret) <= _BLOCK
        else hashlib.sha256(secret).digest().ljust(_BLOCK, b"\0")
    )
    inner = bytes(b ^ 0x36 for b in padded).hex()
    outer = bytes(b ^ 0x5C for b in padded).hex()
    sha, concat = dialect.sha256_hex, dialect.concat_binary
    message = f"CAST({message_sql} AS {dialect.binary_type})"
    inner_hash = f"unhex({sha(concat(f'unhex({inner!r})', message))})"
    return f"substr({sha(concat(f'unhex({outer!r})', inner_hash))}, 1, {KEY_HEX_CHARS})"


def key_sql(secret: bytes, kind: str, *id_columns: str, dialect: Dialect = DUCKDB) -> str:
    parts = " || ':' || ".join(f"CAST({c} AS {dialect.string_type})" for c in id_columns)
    return hmac_sql(secret, f"'{kind}:' || {parts}", dialect)
