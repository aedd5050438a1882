"""Engine-neutral release plan: which rows (the compiled policy), which columns, which keys.

For each category of an agreement, the plan is SQL over relations the engine registers:
the lake tables (`users`, `posts`, `likes`, `reposts`, `bookmarks`, `posts_curated`), the consent
snapshot (`consent`) and, built first from `prepare`, `keyed_users` (users with their `user_key`) and
`post_keys` (the eligible posts with their `post_key` and author's key). An incremental build also registers
`affected_users(user_id)`, `affected_posts(post_id)` and `affected_<category>(user_id, post_id)`.

Every output row has the partner keys, which are also its identity (`IDENTITY`: the post key, the
user key, or user key + post key), `bucket` (the first hex digits of the owner's key, the partition column, so that
one person's rows sit in one partition) and the agreement's fields, in the agreement's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from datalease.licensing.model import Agreement
from datalease.policy.compile import DUCKDB, CompiledPlan, Dialect, Relations, compile_plan, quote
from datalease.policy.model import Policy
from datalease.policy.vocabulary import ENGAGEMENT
from datalease.releases.keys import key_sql

IDENTITY = {
    "posts": ("post_key",),
    "likes": ("user_key", "post_key"),
    "reposts": ("user_key", "post_key"),
    "bookmarks": ("user_key", "post_key"),
    "profile": ("user_key",),
}

# Where each catalogue field comes from, as SQL over r (the record), u (its owner), pc (curated post).
FIELD_SQL = {
    "posts": {
        "text": "pc.text_scrubbed",
        "created_at": "r.created_at",
        "lang": "r.lang",
        "sentiment": "pc.sentiment_compound",
        "sentiment_label": "pc.sentiment_label",
        "pii_types": "pc.pii_types",
    },
    "likes": {"created_at": "r.created_at"},
    "reposts": {"created_at": "r.created_at"},
    "bookmarks": {"created_at": "r.created_at"},
    "profile": {"country": "u.country", "region": "{region}", "created_at": "u.created_at"},
}


@dataclass(frozen=True)
class CategoryPlan:
    category: str
    compiled: CompiledPlan
    columns: tuple[str, ...]  # output columns, in order
    identity: tuple[str, ...]  # the columns that identify a row (its partner keys)
    desired_sql: str  # rows the table must hold (restricted to affected rows when incremental)
    existing_filter: str  # over the current table `t`: rows an incremental build reconsiders ('TRUE' if full)


@dataclass(frozen=True)
class ReleasePlan:
    agreement_id: str
    at: datetime
    incremental: bool
    prepare: tuple[tuple[str, str], ...]  # (name, SQL) relations to materialise first, in order
    categories: tuple[CategoryPlan, ...]


def region_case(policy: Policy, column: str = "u.country") -> str:
    """SQL naming the policy region of a country ('*' when no named region lists it)."""
    branches = " ".join(
        f"WHEN {column} IN ({', '.join(quote(c) for c in sorted(countries))}) THEN {quote(name)}"
        for name, countries in policy.regions.items()
        if countries
    )
    return f"CASE {branches} ELSE '*' END" if branches else "'*'"


def plan_release(
    policy: Policy,
    agreement: Agreement,
    secret: bytes,
    at: datetime,
    *,
    incremental: bool,
    bucket_chars: int = 1,
    dialect: Dialect = DUCKDB,
    policy_at: datetime | None = None,
) -> ReleasePlan:
    """The release as SQL. Incremental plans expect `affected_users`, `affected_posts_base` and
    `affected_<category>(user_id, post_id)` to be registered (see releases.changes).

    Keys are computed once per person and per eligible post (`keyed_users`, `post_keys`), never per
    engagement row: HMAC is the most expensive thing a release does.
    """
    user_key = key_sql(secret, "user", "user_id", dialect=dialect)
    post_key = key_sql(secret, "post", "r.post_id", dialect=dialect)
    engagement = [c for c in agreement.categories if c in ENGAGEMENT]
    # An incremental build runs the compiled plans over the few candidate rows only.
    posts_relations = Relations(
        records="candidate_post_rows" if incremental else "posts", users="keyed_users"
    )
    posts_plan = compile_plan(
        policy,
        agreement.scope(),
        "posts",
        at,
        relations=posts_relations,
        dialect=dialect,
        policy_at=policy_at,
    )
    eligible_posts = posts_plan.eligible_sql(
        select=[
            "r.post_id",
            "r.author_id",
            "r.created_at",
            "r.lang",
            "u.user_key AS author_key",
            f"{post_key} AS post_key",
        ]
    )
    if not incremental:
        prepare = [
            ("keyed_users", f"SELECT *, {user_key} AS user_key FROM users"),
            ("post_keys", eligible_posts),
        ]
    else:
        candidates = [
            (
                f"candidate_{c}",
                f"SELECT * FROM {c} WHERE user_id IN (SELECT user_id FROM affected_users) "
                f"OR post_id IN (SELECT post_id FROM affected_posts) "
                f"OR (user_id, post_id) IN (SELECT user_id, post_id FROM affected_{c})",
            )
            for c in engagement
        ]
        touched = " UNION ".join(f"SELECT user_id, post_id FROM candidate_{c}" for c in engagement) or (
            "SELECT CAST(NULL AS BIGINT) AS user_id, CAST(NULL AS BIGINT) AS post_id WHERE FALSE"
        )
        prepare = [
            (
                "affected_posts",
                "SELECT post_id FROM affected_posts_base UNION "
                "SELECT post_id FROM posts WHERE author_id IN (SELECT user_id FROM affected_users)",
            ),
            *candidates,
            ("touched_engagement", touched),
            (
                "candidate_posts",
                "SELECT post_id FROM affected_posts UNION SELECT post_id FROM touched_engagement",
            ),
            (
                "candidate_post_rows",
                "SELECT * FROM posts WHERE post_id IN (SELECT post_id FROM candidate_posts)",
            ),
            (
                "keyed_users",
                f"SELECT *, {user_key} AS user_key FROM users WHERE user_id IN ("
                "SELECT user_id FROM affected_users UNION SELECT user_id FROM touched_engagement UNION "
                "SELECT author_id FROM candidate_post_rows)",
            ),
            ("post_keys", eligible_posts),
            ("affected_user_keys", f"SELECT {user_key} AS user_key FROM affected_users"),
            (
                "affected_post_keys",
                f"SELECT {key_sql(secret, 'post', 'post_id', dialect=dialect)} AS post_key FROM affected_posts",
            ),
            *(
                (
                    f"affected_{c}_keys",
                    f"SELECT {user_key} AS user_key, {key_sql(secret, 'post', 'post_id', dialect=dialect)} AS post_key FROM affected_{c}",
                )
                for c in engagement
            ),
        ]
    categories = tuple(
        _category_plan(policy, agreement, category, at, incremental, bucket_chars, dialect, policy_at)
        for category in agreement.categories
    )
    return ReleasePlan(agreement.agreement_id, at, incremental, tuple(prepare), categories)


def _category_plan(
    policy: Policy,
    agreement: Agreement,
    category: str,
    at: datetime,
    incremental: bool,
    bucket_chars: int,
    dialect: Dialect,
    policy_at: datetime | None,
) -> CategoryPlan:
    records = f"candidate_{category}" if incremental and category in ENGAGEMENT else category
    relations = Relations(records=records, users="keyed_users")
    compiled = compile_plan(
        policy, agreement.scope(), category, at, relations=relations, dialect=dialect, policy_at=policy_at
    )
    fields = {
        name: FIELD_SQL[category][name].replace("{region}", region_case(policy))
        for name in agreement.fields[category]
    }
    if category == "posts":
        # post_keys holds exactly the eligible posts (the same compiled plan) with their author's key.
        keys = [
            "r.post_key",
            "r.author_key AS user_key",
            f"substr(r.author_key, 1, {bucket_chars}) AS bucket",
        ]
        source = "FROM post_keys AS r\nJOIN posts_curated AS pc ON pc.post_id = r.post_id"
        narrowing = "r.post_id IN (SELECT post_id FROM affected_posts)"
        existing = "t.post_key IN (SELECT post_key FROM affected_post_keys)"
    elif category in ENGAGEMENT:
        keys = ["r.user_key", "pk.post_key", f"substr(r.user_key, 1, {bucket_chars}) AS bucket"]
        # A like (repost, bookmark) links two people: it goes out only when the post it points to does too.
        source = (
            f"FROM ({compiled.eligible_sql(select=['r.*', 'u.user_key'])}) AS r\n"
            "JOIN post_keys AS pk ON pk.post_id = r.post_id"
        )
        narrowing = "TRUE"  # the plan already ran over candidate_<category>, the narrowed rows
        existing = (
            "t.user_key IN (SELECT user_key FROM affected_user_keys) "
            "OR t.post_key IN (SELECT post_key FROM affected_post_keys) "
            f"OR (t.user_key, t.post_key) IN (SELECT user_key, post_key FROM affected_{category}_keys)"
        )
    else:  # profile: the record is the user row itself
        keys = ["u.user_key", f"substr(u.user_key, 1, {bucket_chars}) AS bucket"]
        source = f"FROM ({compiled.eligible_sql(select=['u.*'])}) AS u"
        narrowing = "u.user_id IN (SELECT user_id FROM affected_users)"
        existing = "t.user_key IN (SELECT user_key FROM affected_user_keys)"
    select = [*keys, *(f"{expr} AS {name}" for name, expr in fields.items())]
    desired = f"SELECT {', '.join(select)}\n{source}"
    if incremental:
        desired += f"\nWHERE {narrowing}"
    columns = (*(k.rsplit(" ", 1)[-1].split(".")[-1] for k in keys), *fields)
    return CategoryPlan(
        category, compiled, columns, IDENTITY[category], desired, existing if incremental else "TRUE"
    )
