"""Arrow schemas of the platform tables, their primary keys and the limits ingest enforces."""

from __future__ import annotations

from typing import Final

import pyarrow as pa

TS: Final = pa.timestamp("us", tz="UTC")

ACCOUNT_STATES: Final = ("active", "protected", "suspended", "deactivated", "deleted")
VISIBILITIES: Final = ("public", "followers")
MAX_TEXT_CHARS: Final = 10_000
MAX_HANDLE_CHARS: Final = 50
MAX_ID: Final = 2**63 - 1  # user_id and post_id are int64 columns

USERS: Final = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("handle", pa.string(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("birth_date", pa.date32()),
        pa.field("account_state", pa.string(), nullable=False),
        pa.field("created_at", TS, nullable=False),
    ]
)

POSTS: Final = pa.schema(
    [
        pa.field("post_id", pa.int64(), nullable=False),
        pa.field("author_id", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("created_at", TS, nullable=False),
        pa.field("visibility", pa.string(), nullable=False),
        pa.field("deleted_at", TS),
    ]
)

ENGAGEMENT: Final = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("post_id", pa.int64(), nullable=False),
        pa.field("created_at", TS, nullable=False),
        pa.field("deleted_at", TS),
    ]
)

POSTS_CURATED: Final = pa.schema(
    [
        pa.field("post_id", pa.int64(), nullable=False),
        pa.field("text_sha256", pa.string(), nullable=False),
        pa.field("text_scrubbed", pa.string(), nullable=False),
        pa.field("pii_types", pa.list_(pa.string()), nullable=False),
        pa.field("sentiment_compound", pa.float64(), nullable=False),
        pa.field("sentiment_label", pa.string(), nullable=False),
        pa.field("curated_at", TS, nullable=False),
    ]
)

SOURCE_SCHEMAS: Final[dict[str, pa.Schema]] = {
    "users": USERS,
    "posts": POSTS,
    "likes": ENGAGEMENT,
    "reposts": ENGAGEMENT,
    "bookmarks": ENGAGEMENT,
}

PRIMARY_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "users": ("user_id",),
    "posts": ("post_id",),
    "likes": ("user_id", "post_id"),
    "reposts": ("user_id", "post_id"),
    "bookmarks": ("user_id", "post_id"),
}

# Names that look like private messaging: refused outright, never ingested under any category.
FORBIDDEN_TABLES: Final = frozenset({"dms", "direct_messages", "messages", "dm", "conversations", "chats"})
