"""One policy, two compilers: `decide` and the SQL from `compile_plan` agree on every record."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalease.platform.schemas import TS
from datalease.policy.compile import CATEGORY_SHAPES, Relations, compile_plan
from datalease.policy.decide import decide
from datalease.policy.model import (
    ANY,
    HardExclusions,
    Notice,
    Policy,
    PolicyVersion,
    RecordFacts,
    RegulatorOrder,
    Rule,
    Scope,
    UserFacts,
)
from datalease.policy.notices import notified_key
from datalease.policy.resolve import adult_cutoff
from datalease.policy.vocabulary import (
    CATEGORIES,
    MASTER_KEY,
    MECHANISMS,
    PURPOSES,
    category_key,
    partner_block_key,
    post_choice_key,
    purpose_key,
    signal_key,
)
from depth import examples

COUNTRIES = ("US", "DE", "FR", "GB", "CH", "BR", "JP", "IE")
STATES = ("active", "protected", "suspended", "deactivated", "deleted")
PARTNERS = ("acme", "globex")
BASE = datetime(2024, 1, 1, tzinfo=UTC)

instants = st.integers(min_value=0, max_value=3 * 365).map(lambda d: BASE + timedelta(days=d))
maybe_instants = st.none() | instants


@st.composite
def rules(draw: st.DrawFn, region_names: tuple[str, ...]) -> Rule:
    starts = draw(maybe_instants)
    ends = draw(maybe_instants)
    if starts is not None and ends is not None and ends <= starts:
        starts, ends = ends - timedelta(days=1), starts + timedelta(days=1)
    return Rule(
        regions=draw(
            st.just((ANY,))
            | st.lists(st.sampled_from(region_names), min_size=1, max_size=2, unique=True).map(tuple)
        )
        if region_names
        else (ANY,),
        categories=draw(
            st.just((ANY,))
            | st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True).map(tuple)
        ),
        purposes=draw(
            st.just((ANY,))
            | st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True).map(tuple)
        ),
        mechanism=draw(st.sampled_from(MECHANISMS)),
        starts=starts,
        ends=ends,
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    pool = list(COUNTRIES)
    regions: dict[str, frozenset[str]] = {}
    for name in draw(st.lists(st.sampled_from(("EEA", "UK", "CH", "NA")), max_size=3, unique=True)):
        taken = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)) if pool else []
        pool = [c for c in pool if c not in taken]
        regions[name] = frozenset(taken)
    starts = sorted(draw(st.lists(instants, min_size=1, max_size=3, unique=True)))
    versions = tuple(
        PolicyVersion(f"v{i}", start, tuple(draw(st.lists(rules(tuple(regions)), max_size=4))))
        for i, start in enumerate(starts)
    )
    exclusions = HardExclusions(
        minimum_age=draw(st.sampled_from((16, 18))),
        exclude_unknown_age=draw(st.booleans()),
        protected_accounts=draw(st.booleans()),
        account_states=tuple(
            draw(st.lists(st.sampled_from(("suspended", "deactivated", "deleted")), unique=True))
        ),
        deleted_content=draw(st.booleans()),
        non_public_content=draw(st.booleans()),
    )
    # Usually every category and purpose; sometimes a subset, so that unlisted ones must not flow.
    categories = draw(
        st.just(CATEGORIES) | st.lists(st.sampled_from(CATEGORIES), min_size=1, unique=True).map(tuple)
    )
    purposes = draw(
        st.just(PURPOSES) | st.lists(st.sampled_from(PURPOSES), min_size=1, unique=True).map(tuple)
    )
    return Policy("generated", categories, purposes, regions, exclusions, versions)


# --- issue 14: a regulator order over the policy's regions and/or countries ----------------------
@st.composite
def regulator_orders(draw: st.DrawFn, policy: Policy, at: datetime) -> RegulatorOrder:
    near = st.sampled_from((at, at - timedelta(seconds=1), at + timedelta(seconds=1))) | instants
    effective = draw(near)
    until = draw(st.none() | near)
    if until is not None and until <= effective:
        until = effective + timedelta(days=1)
    regions = tuple(draw(st.lists(st.sampled_from(tuple(policy.regions) or ("-",)), max_size=2, unique=True)))
    regions = tuple(r for r in regions if r in policy.regions)
    countries = tuple(
        draw(st.lists(st.sampled_from(COUNTRIES), min_size=0 if regions else 1, max_size=2, unique=True))
    )
    return RegulatorOrder(
        order_id=f"o{draw(st.integers(0, 99))}",
        issued_by="regulator",
        reference="ref",
        regions=regions,
        countries=countries,
        categories=draw(
            st.just((ANY,))
            | st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True).map(tuple)
        ),
        purposes=draw(
            st.just((ANY,))
            | st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True).map(tuple)
        ),
        effective=effective,
        until=until,
        lifted_at=draw(st.none() | near),
    )


# --- end of issue 14's block -------------------------------------------------------------------


SETTING_KEYS = (
    MASTER_KEY,
    *(category_key(c) for c in CATEGORIES),
    *(purpose_key(p) for p in PURPOSES),
    *(partner_block_key(p) for p in PARTNERS),
)


# --- issue 15: notices (with or without required notification), notice periods, signals -----------
# Biased so that `not_notified` and `signal_opt_out` (and the opt-in exception) hold in many worlds.
@st.composite
def with_notices_and_signals(draw: st.DrawFn, policy: Policy) -> Policy:
    # A fallback rule (every region, category and purpose, the least specific) fills the gaps other
    # rules leave, so that defaults turn on from one version to the next: opt_in → opt_out and so on.
    fallbacks = [draw(st.sampled_from((None, "opt_out", "opt_out", "opt_in"))) for _ in policy.versions]
    versions = tuple(
        dataclasses.replace(
            v,
            rules=v.rules if fallback is None else (*v.rules, Rule((ANY,), (ANY,), (ANY,), fallback)),
            notice=Notice(
                published=v.effective_from - timedelta(days=40),
                texts=(),
                sha256="0" * 64,
                require_notification=draw(st.sampled_from((True, True, False))),
            ),
        )
        for v, fallback in zip(policy.versions, fallbacks, strict=True)
    )
    region_keys = st.sampled_from((*policy.regions, ANY))
    periods = draw(st.dictionaries(region_keys, st.sampled_from((0, 30)), max_size=2))
    purposes = st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True).map(tuple)
    meaning = {ANY: draw(purposes), **draw(st.dictionaries(region_keys, purposes, max_size=2))}
    signals = draw(st.sampled_from(({"gpc": meaning}, {"gpc": meaning}, {})))
    return dataclasses.replace(policy, versions=versions, notice_periods=periods, signals=signals)


@st.composite
def notice_and_signal_settings(draw: st.DrawFn, policy: Policy) -> dict[str, bool]:
    chosen: dict[str, bool] = {}
    gpc = draw(st.sampled_from((True, True, False, None)))
    if gpc is not None:
        chosen[signal_key("gpc")] = gpc
    for version in policy.versions:
        notified = draw(st.sampled_from((None, None, True, False)))
        if notified is not None:
            chosen[notified_key(version.version_id)] = notified
    if draw(st.booleans()):  # an explicit opt-in of a category (the opt-in exception of not_notified)
        chosen[category_key(draw(st.sampled_from(CATEGORIES)))] = True
    return chosen


# --- end of issue 15's block ----------------------------------------------------------------------


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    policy = draw(policies())
    policy = draw(with_notices_and_signals(policy))  # issue 15
    # T often lands exactly on a boundary: a version start or a rule window edge.
    edges = [v.effective_from for v in policy.versions] + [
        e for v in policy.versions for r in v.rules for e in (r.starts, r.ends) if e is not None
    ]
    at = draw(st.sampled_from(edges) | instants) if edges else draw(instants)
    # --- issue 14: regulator orders (0–2), their edges often exactly at T ---------------------
    policy = replace(policy, orders=tuple(draw(st.lists(regulator_orders(policy, at), max_size=2))))
    # --- end of issue 14's block ---------------------------------------------------------------
    cutoff = adult_cutoff(at, policy.hard_exclusions.minimum_age)
    birth = (
        st.none()
        | st.sampled_from((cutoff, cutoff + timedelta(days=1), cutoff - timedelta(days=1)))
        | st.dates(min_value=date(1950, 1, 1), max_value=date(2020, 1, 1))
    )
    users = [
        UserFacts(
            user_id=i,
            country=draw(st.sampled_from(COUNTRIES)),
            birth_date=draw(birth),
            account_state=draw(st.sampled_from(STATES)),
        )
        for i in range(draw(st.integers(1, 12)))
    ]
    consent = {
        u.user_id: draw(st.dictionaries(st.sampled_from(SETTING_KEYS), st.booleans(), max_size=5))
        for u in users
    }
    for settings_ in consent.values():  # issue 15
        settings_.update(draw(notice_and_signal_settings(policy)))
    near_at = st.sampled_from((at, at - timedelta(seconds=1), at + timedelta(seconds=1))) | instants
    records = [
        RecordFacts(
            category=draw(st.sampled_from(CATEGORIES)),
            owner=draw(st.sampled_from(users)),
            created_at=draw(near_at),
            deleted_at=draw(st.none() | near_at),
            visibility=draw(st.sampled_from(("public", "followers"))),
        )
        for _ in range(draw(st.integers(0, 25)))
    ]
    records = _one_profile_per_user([_normalise(r) for r in records])
    scope = Scope(
        purposes=tuple(draw(st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True))),
        categories=CATEGORIES,
        partner=draw(st.none() | st.sampled_from(PARTNERS)),
        regions_allowed=draw(
            st.none() | st.lists(st.sampled_from((*policy.regions, ANY)), unique=True).map(tuple)
        ),
        regions_denied=tuple(
            draw(st.lists(st.sampled_from((*policy.regions, ANY)), max_size=1, unique=True))
        ),
        content_from=draw(maybe_instants),
        content_until=draw(maybe_instants),
    )
    # Sometimes the policy is read at another instant than the facts (a withdrawal judges today's
    # facts under the policy the release was built with).
    policy_at = draw(st.none() | st.sampled_from(edges or [at]) | instants)
    # --- per-post choices (issue 18): posts get ids; owners refuse or allow their own posts and,
    # harmlessly, other people's post ids (a key about a post one does not own must change nothing).
    records = [replace(r, post_id=100 + i) if r.category == "posts" else r for i, r in enumerate(records)]
    post_ids = [r.post_id for r in records if r.post_id is not None]
    if post_ids:
        for uid in consent:
            for pid in draw(st.lists(st.sampled_from(post_ids), max_size=3, unique=True)):
                consent[uid][post_choice_key(pid)] = draw(st.booleans())
    # --- end per-post choices
    return {
        "policy": policy,
        "at": at,
        "policy_at": policy_at,
        "users": users,
        "consent": consent,
        "records": records,
        "scope": scope,
    }


def _normalise(record: RecordFacts) -> RecordFacts:
    return RecordFacts(
        category=record.category,
        owner=record.owner,
        created_at=record.created_at,
        deleted_at=None if record.category == "profile" else record.deleted_at,
        visibility=record.visibility if record.category == "posts" else "public",
        post_id=record.post_id if record.category == "posts" else None,
    )


def _one_profile_per_user(records: list[RecordFacts]) -> list[RecordFacts]:
    seen: set[int] = set()
    kept = []
    for record in records:
        if record.category == "profile":
            if record.owner.user_id in seen:
                continue
            seen.add(record.owner.user_id)
        kept.append(record)
    return kept


def _tables(world: dict[str, Any], category: str) -> dict[str, pa.Table]:
    users: list[UserFacts] = world["users"]
    records = [r for r in world["records"] if r.category == category]
    consent = [
        (uid, key, value) for uid, settings_ in world["consent"].items() for key, value in settings_.items()
    ]
    user_rows = {
        "user_id": [u.user_id for u in users],
        "country": [u.country for u in users],
        "birth_date": [u.birth_date for u in users],
        "account_state": [u.account_state for u in users],
        "created_at": [BASE for _ in users],
    }
    if category == "profile":
        # A profile record is its user row; give each user its record's created_at (one per user at most).
        created = {r.owner.user_id: r.created_at for r in records}
        user_rows["created_at"] = [created.get(u.user_id, BASE) for u in users]
    shape = CATEGORY_SHAPES[category]
    record_rows: dict[str, Any] = {
        "rid": list(range(len(records))),
        shape.owner: [r.owner.user_id for r in records],
        "created_at": pa.array([r.created_at for r in records], TS),
        "deleted_at": pa.array([r.deleted_at for r in records], TS),
    }
    if shape.visibility:
        record_rows["visibility"] = [r.visibility for r in records]
    if shape.post_id:
        record_rows[shape.post_id] = pa.array([r.post_id for r in records], pa.int64())
    return {
        "users": pa.table({**user_rows, "created_at": pa.array(user_rows["created_at"], TS)}),
        "consent": pa.table(
            {
                "user_id": pa.array([c[0] for c in consent], pa.int64()),
                "key": pa.array([c[1] for c in consent], pa.string()),
                "value": pa.array([c[2] for c in consent], pa.bool_()),
            }
        ),
        "records": pa.table(record_rows),
    }


@settings(
    max_examples=examples(ci=150, deep=500),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(worlds())
def test_decide_and_compiled_sql_agree_on_every_record(world: dict[str, Any]) -> None:
    policy: Policy = world["policy"]
    at: datetime = world["at"]
    for category in CATEGORIES:
        records = [r for r in world["records"] if r.category == category]
        tables = _tables(world, category)
        con = duckdb.connect()
        for name, table in tables.items():
            con.register(name, table)
        plan = compile_plan(
            policy,
            world["scope"],
            category,
            at,
            relations=Relations(records="records"),
            policy_at=world["policy_at"],
        )
        key = "u.user_id" if category == "profile" else "r.rid"
        rows = con.execute(plan.reasons_sql(select=[f"{key} AS rid"])).fetchall()
        columns = [d[0] for d in con.description]
        by_rid = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
        eligible = {row[0] for row in con.execute(plan.eligible_sql(select=[key])).fetchall()}
        con.close()
        for index, record in enumerate(records):
            rid = record.owner.user_id if category == "profile" else index
            expected = decide(
                policy,
                record,
                world["consent"][record.owner.user_id],
                world["scope"],
                at,
                policy_at=world["policy_at"],
            )
            got = by_rid[rid]
            got_reasons = tuple(code for code in plan.reason_conditions if got[code])
            assert got["allowed"] == expected.allowed, (
                category,
                record,
                expected,
                got_reasons,
                plan.eligible_sql(),
            )
            assert got_reasons == expected.reasons, (category, record, expected, got_reasons)
            assert (rid in eligible) == expected.allowed
