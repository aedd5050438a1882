"""An independent oracle for release tables: what every table of an agreement must hold at time T.

It reads the source lake straight from Delta, the consent ledger one user at a time
(`ConsentLedger.state_at`), decides every record with the point compiler `decide()` and computes the
partner keys with `hmac` — never the project's SQL, plan or key helpers — then compares with the
table content the release ledger pins.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from deltalake import DeltaTable

from datalease.licensing.model import Agreement
from datalease.licensing.registry import get_agreement
from datalease.policy.decide import decide
from datalease.policy.model import Policy, RecordFacts, UserFacts
from datalease.releases.model import Release
from datalease.releases.support_tables import LEDGER_HEAD, is_licensed_data
from datalease.store.releases import latest_release, list_releases
from datalease.workspace import Workspace

ENGAGEMENT = ("likes", "reposts", "bookmarks")
RAW_ID_COLUMNS = frozenset({"user_id", "post_id", "author_id", "handle", "birth_date"})
RAW_TEXT_COLUMNS = frozenset({"raw_text", "text_raw", "original_text"})
KEY_COLUMNS = {
    "posts": ("post_key", "user_key"),
    "likes": ("user_key", "post_key"),
    "reposts": ("user_key", "post_key"),
    "bookmarks": ("user_key", "post_key"),
    "profile": ("user_key",),
}
LAKE_PATHS = {
    "users": ("source", "users"),
    "posts": ("source", "posts"),
    "likes": ("source", "likes"),
    "reposts": ("source", "reposts"),
    "bookmarks": ("source", "bookmarks"),
    "posts_curated": ("curated", "posts"),
}

Row = tuple[tuple[str, Any], ...]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- keys --------------------------------------------------------------------------------------


def master_key(ws: Workspace) -> bytes:
    """The platform master key, read from the home (tests never set DATALEASE_MASTER_KEY)."""
    return bytes.fromhex((ws.settings.resolved_home / "keys" / "master.key").read_text().strip())


def secret_for(ws: Workspace, agreement_id: str) -> bytes:
    return hmac.new(master_key(ws), f"agreement:{agreement_id}".encode(), hashlib.sha256).digest()


def hkey(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:32]


# --- reading -----------------------------------------------------------------------------------


def lake_path(ws: Workspace, name: str) -> Path:
    folder, table = LAKE_PATHS[name]
    return ws.settings.resolved_home / "lake" / folder / table


def lake_versions(ws: Workspace) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name in LAKE_PATHS:
        path = str(lake_path(ws, name))
        out[name] = int(DeltaTable(path).version()) if DeltaTable.is_deltatable(path) else None
    return out


def lake_rows(ws: Workspace, name: str) -> list[dict[str, Any]]:
    path = str(lake_path(ws, name))
    if not DeltaTable.is_deltatable(path):
        return []
    rows: list[dict[str, Any]] = DeltaTable(path).to_pyarrow_table().to_pylist()
    return rows


def share_table(ws: Workspace, agreement_id: str, category: str) -> Path:
    return ws.settings.resolved_home / "shares" / agreement_id / category


def read_table(path: Path, version: int | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    table = DeltaTable(str(path), version=version).to_pyarrow_table()
    return list(table.column_names), table.to_pylist()


def normalise(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(normalise(v) for v in value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return ("naive", value.isoformat())
        return (value - EPOCH) // timedelta(microseconds=1)
    return value


def as_row(record: Mapping[str, Any]) -> Row:
    return tuple(sorted((k, normalise(v)) for k, v in record.items()))


# --- the oracle --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The platform as of one moment: lake rows by key and each user's consent at T."""

    at: datetime
    users: dict[int, dict[str, Any]]
    posts: dict[int, dict[str, Any]]
    curated: dict[int, dict[str, Any]]
    engagement: dict[str, list[dict[str, Any]]]
    consent: dict[int, dict[str, bool]]
    versions: dict[str, int | None]


def load_source(ws: Workspace, at: datetime) -> Source:
    users = {r["user_id"]: r for r in lake_rows(ws, "users")}
    consent = {
        user_id: {key: state.value for key, state in ws.ledger.state_at(user_id, at).items()}
        for user_id in users
    }
    return Source(
        at=at,
        users=users,
        posts={r["post_id"]: r for r in lake_rows(ws, "posts")},
        curated={r["post_id"]: r for r in lake_rows(ws, "posts_curated")},
        engagement={c: lake_rows(ws, c) for c in ENGAGEMENT},
        consent=consent,
        versions=lake_versions(ws),
    )


def _owner(user: Mapping[str, Any]) -> UserFacts:
    birth: date | None = user["birth_date"]
    return UserFacts(user["user_id"], user["country"], birth, user["account_state"])


def expected_tables(
    policy: Policy, agreement: Agreement, secret: bytes, source: Source
) -> dict[str, Counter[Row]]:
    """Every row every table of `agreement` must hold at `source.at`, as multisets of normalised rows."""
    at, scope = source.at, agreement.scope()

    def allowed(
        category: str, user: Mapping[str, Any], created_at: datetime, deleted_at: Any, visibility: str
    ) -> bool:
        facts = RecordFacts(category, _owner(user), created_at, deleted_at, visibility)
        return decide(policy, facts, source.consent.get(user["user_id"], {}), scope, at).allowed

    eligible_posts: set[int] = set()
    for post in source.posts.values():
        author = source.users.get(post["author_id"])
        if author is not None and allowed(
            "posts", author, post["created_at"], post["deleted_at"], post["visibility"]
        ):
            eligible_posts.add(post["post_id"])

    def user_key(user_id: int) -> str:
        return hkey(secret, f"user:{user_id}")

    def post_key(post_id: int) -> str:
        return hkey(secret, f"post:{post_id}")

    tables: dict[str, Counter[Row]] = {}
    for category in agreement.categories:
        fields = agreement.fields[category]
        rows: Counter[Row] = Counter()
        if category == "posts":
            for post_id in sorted(eligible_posts):
                post, curated = source.posts[post_id], source.curated.get(post_id)
                if curated is None:
                    continue  # released posts need their curated row
                values = {
                    "text": curated["text_scrubbed"],
                    "created_at": post["created_at"],
                    "lang": post["lang"],
                    "sentiment": curated["sentiment_compound"],
                    "sentiment_label": curated["sentiment_label"],
                    "pii_types": curated["pii_types"],
                }
                uk = user_key(post["author_id"])
                record = {"post_key": post_key(post_id), "user_key": uk, "bucket": uk[0]}
                rows[as_row({**record, **{f: values[f] for f in fields}})] += 1
        elif category in ENGAGEMENT:
            for row in source.engagement[category]:
                user = source.users.get(row["user_id"])
                if user is None or row["post_id"] not in eligible_posts:
                    continue  # both people must allow it: the post must go out to this agreement too
                if not allowed(category, user, row["created_at"], row["deleted_at"], "public"):
                    continue
                uk = user_key(row["user_id"])
                record = {"user_key": uk, "post_key": post_key(row["post_id"]), "bucket": uk[0]}
                rows[as_row({**record, **{f: row[f] for f in fields}})] += 1
        else:  # profile
            for user in source.users.values():
                if not allowed("profile", user, user["created_at"], None, "public"):
                    continue
                values = {
                    "country": user["country"],
                    "region": policy.region_of(user["country"]),
                    "created_at": user["created_at"],
                }
                uk = user_key(user["user_id"])
                record = {"user_key": uk, "bucket": uk[0]}
                rows[as_row({**record, **{f: values[f] for f in fields}})] += 1
        tables[category] = rows
    return tables


def expected_columns(agreement: Agreement, category: str) -> set[str]:
    return {*KEY_COLUMNS[category], "bucket", *agreement.fields[category]}


def actual_rows(columns: list[str], rows: Iterable[dict[str, Any]], category: str) -> Counter[Row]:
    """The table's rows normalised like the oracle's, checking `row_key` (when present) on the way."""
    out: Counter[Row] = Counter()
    for row in rows:
        if "row_key" in columns:
            identity = "".join(row[k] for k in ("user_key", "post_key") if k in KEY_COLUMNS[category])
            if category == "posts":
                identity = row["post_key"]
            assert row["row_key"] == identity, f"{category}: row_key {row['row_key']!r} is not the row's keys"
        out[as_row({k: v for k, v in row.items() if k != "row_key"})] += 1
    return out


def describe_difference(category: str, expected: Counter[Row], actual: Counter[Row]) -> str:
    missing, extra = expected - actual, actual - expected
    lines = [f"{category}: {sum(missing.values())} rows missing, {sum(extra.values())} unexpected"]
    lines += [f"  missing {dict(r)}" for r in list(missing)[:3]]
    lines += [f"  unexpected {dict(r)}" for r in list(extra)[:3]]
    return "\n".join(lines)


def assert_no_raw_identifiers(columns: Iterable[str], where: str) -> None:
    leaked = (set(columns) & RAW_ID_COLUMNS) | (set(columns) & RAW_TEXT_COLUMNS)
    assert not leaked, f"{where}: platform identifiers in a release table: {sorted(leaked)}"


def pinned_contents(ws: Workspace, release: Release) -> dict[str, Counter[Row]]:
    """The content of each table at the version `release` pins."""
    out = {}
    for table in release.tables:
        columns, rows = read_table(share_table(ws, release.agreement_id, table.category), table.table_version)
        out[table.category] = actual_rows(columns, rows, table.category)
    return out


def check_release(ws: Workspace, agreement_id: str, source: Source | None = None) -> Release:
    """Assert that the latest ledger row of `agreement_id` pins exactly what the oracle expects."""
    policy = ws.require_policy()
    with ws.session() as session:
        agreement = get_agreement(session, agreement_id, policy)
        release = latest_release(session, agreement_id)
    assert release is not None, f"{agreement_id}: no release in the ledger"
    if source is None or source.at != release.as_of:
        source = load_source(ws, release.as_of)
    assert release.source_versions == source.versions, "the release does not pin the lake versions it read"
    expected = expected_tables(policy, agreement, secret_for(ws, agreement_id), source)
    data = [t for t in release.tables if is_licensed_data(t.category)]
    assert sorted(t.category for t in data) == sorted(agreement.categories)
    check_ledger_head(ws, release)
    problems = []
    for table in data:
        path = share_table(ws, agreement_id, table.category)
        columns, rows = read_table(path, table.table_version)
        assert_no_raw_identifiers(columns, f"{agreement_id}/{table.category}")
        assert set(columns) - {"row_key"} == expected_columns(agreement, table.category), (
            f"{agreement_id}/{table.category}: columns {columns}"
        )
        actual = actual_rows(columns, rows, table.category)
        want = expected[table.category]
        if actual != want:
            problems.append(describe_difference(table.category, want, actual))
        assert table.rows_total == len(rows), (
            f"{table.category}: ledger says {table.rows_total}, table has {len(rows)}"
        )
    if release.full_build and getattr(release, "excluded_sample_every", 1) == 1:
        reported = Counter({code: n for code, n in release.excluded.items() if n})
        withheld = withheld_reasons(policy, agreement, source)
        if reported != withheld:
            problems.append(f"excluded: the ledger says {dict(reported)}, the oracle {dict(withheld)}")
    assert not problems, (
        f"release {release.release_id} of {agreement_id} as of {release.as_of} "
        f"({'full' if release.full_build else 'incremental'}) differs from the oracle:\n"
        + "\n".join(problems)
    )
    return release


def check_ledger_head(ws: Workspace, release: Release) -> None:
    """The ledger_head table at the version `release` pins: one row per build of the agreement up to
    it, each the consent head, as-of, policy version and data table versions its ledger row records."""
    pinned = release.table(LEDGER_HEAD)
    assert pinned is not None, f"release {release.release_id} pins no ledger_head table"
    path = share_table(ws, release.agreement_id, LEDGER_HEAD)
    rows = DeltaTable(str(path), version=pinned.table_version).to_pyarrow_table().to_pylist()
    with ws.session() as session:
        builds = [
            r
            for r in list_releases(session, release.agreement_id)
            if r.kind == "build" and r.release_id <= release.release_id
        ]
    want = [
        (
            b.release_id,
            b.as_of,
            b.consent_watermark,
            b.consent_head_hash,
            b.policy_version,
            {t.category: t.table_version for t in b.tables if is_licensed_data(t.category)},
        )
        for b in builds
    ]
    got = [
        (
            r["release_id"],
            r["as_of"],
            r["consent_seq"],
            r["consent_hash"],
            r["policy_version"],
            json.loads(r["table_versions"]),
        )
        for r in sorted(rows, key=lambda r: r["release_id"])
    ]
    assert got == want, f"ledger_head at v{pinned.table_version}: {got}, the release ledger says {want}"
    assert pinned.rows_total == len(rows)


def release_count(ws: Workspace, agreement_id: str | None = None) -> int:
    """Builds in the ledger (revocation releases, which the revocation worker adds, not counted)."""
    with ws.session() as session:
        return sum(r.kind == "build" for r in list_releases(session, agreement_id))


def withheld_reasons(policy: Policy, agreement: Agreement, source: Source) -> Counter[str]:
    """Records withheld per reason code over every category of the agreement (a record withheld for
    several reasons counts under each), as the ledger's `excluded` reports for a full build."""
    scope, at = agreement.scope(), source.at
    counts: Counter[str] = Counter()

    def count(
        category: str, user: Mapping[str, Any] | None, created_at: datetime, deleted_at: Any, visibility: str
    ) -> None:
        if user is None:
            return
        facts = RecordFacts(category, _owner(user), created_at, deleted_at, visibility)
        counts.update(decide(policy, facts, source.consent.get(user["user_id"], {}), scope, at).reasons)

    for category in agreement.categories:
        if category == "posts":
            for post in source.posts.values():
                count(
                    "posts",
                    source.users.get(post["author_id"]),
                    post["created_at"],
                    post["deleted_at"],
                    post["visibility"],
                )
        elif category in ENGAGEMENT:
            for row in source.engagement[category]:
                count(
                    category, source.users.get(row["user_id"]), row["created_at"], row["deleted_at"], "public"
                )
        else:
            for user in source.users.values():
                count("profile", user, user["created_at"], None, "public")
    return counts
