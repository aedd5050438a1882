"""Universal rules of billing, over generated histories (Hypothesis).

- record-days: over a generated history of releases (real Delta tables: appends, copy-on-write
  deletes, versions sharing files), withdrawals and opt-outs, `row_micros` equals an oracle that
  counts each release's rows from the generator's own state; nothing earns after its withdrawal or
  after the person's opt-out instant; keys that map to nobody earn nothing;
- invoices: the total is the pricing applied to the usage (records delivered by the builds of the
  period, metered queries of the agreement's month, the term's days);
- payouts: every fund is divided exactly (payouts + platform share = revenue, to the cent), nobody
  without record-days is paid, each line balances (paid + carried out = earned + carried in);
- largest remainder: the parts sum exactly and each is within a cent of its exact share.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalease.billing.invoices import draft_invoice
from datalease.billing.model import InvoiceLine
from datalease.billing.payouts import FundInput, build_run
from datalease.billing.period import Period
from datalease.billing.recorddays import opt_out_gaps, row_micros
from datalease.billing.rounding import largest_remainder
from datalease.licensing.model import Agreement, Pricing
from datalease.licensing.pricing import flat_share
from datalease.releases.model import KIND_BUILD, KIND_REVOCATION, Release, ReleaseTable
from datalease.revocation.model import ForgetEntry
from datalease.sharing.model import UsageTotal

PERIOD = Period(2026, 3)
USERS = 5
KEYS = {f"k{u}": u for u in range(USERS)}  # "stranger" is a key of nobody
MICRO = timedelta(microseconds=1)
CENT = Decimal("0.01")


def _release(release_id: int, kind: str, at: datetime, version: int, added: int = 0) -> Release:
    return Release(
        release_id, "a", at, at, 1, "v1", "sha", 0, {}, "duckdb", False, 0, {}, 1,
        (ReleaseTable("posts", version, 0, added, 0, 1, 0),), kind,
    )  # fmt: skip


steps = st.lists(
    st.tuples(
        st.sampled_from(["append", "append", "withdraw", "opt_out", "nothing"]),
        st.sampled_from([*KEYS, "stranger"]),
        st.integers(1, 4),  # rows appended
        st.integers(1, 12 * 24 * 60),  # minutes since the previous release
        st.integers(0, 100),  # for an opt-out: how far (in % of the gap) before the release
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps, first=st.integers(-10 * 24 * 60, 20 * 24 * 60))
def test_record_days_follow_the_lineage(history: list[tuple[str, str, int, int, int]], first: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        share = Path(tmp)
        path = str(share / "posts")
        at = PERIOD.start + timedelta(minutes=first)
        state: Counter[str] = Counter()
        releases: list[Release] = []
        held: list[tuple[datetime, Counter[str]]] = []
        entries: list[ForgetEntry] = []
        effective: dict[int, datetime] = {}
        cut: dict[str, datetime] = {}  # key → when it stopped earning (withdrawal or opt-out)
        write_deltalake(path, pa.table({"user_key": pa.array(["k0"], pa.string())}), mode="overwrite")
        DeltaTable(path).delete("user_key = 'k0'")  # an empty version 1 to start from
        for number, (op, key, rows, minutes, before) in enumerate(history, start=1):
            previous = at
            at = at + timedelta(minutes=minutes)
            kind = KIND_BUILD
            if op == "append":
                write_deltalake(
                    path, pa.table({"user_key": pa.array([key] * rows, pa.string())}), mode="append"
                )
                state[key] += rows
                cut.pop(key, None)
            elif op in ("withdraw", "opt_out") and state[key]:
                DeltaTable(path).delete(f"user_key = '{key}'")
                del state[key]
                kind = KIND_REVOCATION
                stop = at
                if op == "opt_out":
                    stop = at - (at - previous) * before // 100
                    effective[number] = stop
                    entries.append(
                        ForgetEntry(
                            f"f{number}",
                            "a",
                            "p",
                            number,
                            number,
                            "user",
                            key,
                            rows,
                            "opt_out",
                            at,
                            at,
                            at,
                            None,
                            None,
                        )
                    )
                cut[key] = stop
            version = DeltaTable(path).version()
            releases.append(_release(number, kind, at, version))
            held.append((at, Counter(state)))
        got = row_micros(share, releases, PERIOD, KEYS, opt_out_gaps(entries, releases, effective))

        # The oracle: the generator's own counts, held from each release to the next, clipped to March.
        expected: Counter[int] = Counter()
        for i, (start, counts) in enumerate(held):
            end = held[i + 1][0] if i + 1 < len(held) else PERIOD.end
            start, end = max(start, PERIOD.start), min(end, PERIOD.end)
            if start >= end:
                continue
            for key, n in counts.items():
                if key not in KEYS:
                    continue
                span = end - start
                for entry in entries:
                    if entry.subject_key == key:
                        g0, g1 = effective[entry.intent_id], releases[entry.release_id - 1].as_of
                        span -= max(timedelta(0), min(end, g1) - max(start, g0))
                expected[KEYS[key]] += n * (span // MICRO)
        assert got == {u: m for u, m in expected.items() if m > 0}
        # Nothing earns after it stopped: a person cut and never re-added earns at most up to the cut.
        for key, stop in cut.items():
            if key in KEYS:
                most = max(c[key] for _, c in held) * max(0, (min(stop, PERIOD.end) - PERIOD.start) // MICRO)
                assert got.get(KEYS[key], 0) <= most


def _agreement(model: str, amount: Decimal, start: datetime, end: datetime) -> Agreement:
    return Agreement(
        "a", "p", "active", ("train_ai_system",), ("posts",), {"posts": ()}, Pricing(model, amount, "USD"),
        start, end, 24,
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(["flat_annual", "per_1k_records", "per_query"]),
    amount=st.decimals(Decimal("0.0001"), Decimal("100000000"), places=4),
    start_day=st.integers(-400, 25),
    length=st.integers(10, 800),
    builds=st.lists(st.tuples(st.integers(-40, 70), st.integers(0, 10**6), st.booleans()), max_size=8),
    usage=st.lists(
        st.tuples(
            st.sampled_from(["2026-02", "2026-03", "2026-04"]),
            st.sampled_from(["a", "b"]),
            st.integers(0, 10**5),
        ),
        max_size=6,
    ),
)
def test_invoice_totals_are_the_pricing_applied_to_the_usage(
    model: str,
    amount: Decimal,
    start_day: int,
    length: int,
    builds: list[tuple[int, int, bool]],
    usage: list[tuple[str, str, int]],
) -> None:
    start = PERIOD.start + timedelta(days=start_day)
    agreement = _agreement(model, amount, start, start + timedelta(days=length))
    if agreement.term_end <= PERIOD.start:
        return
    releases = [
        replace(
            _release(
                i,
                KIND_BUILD if is_build else KIND_REVOCATION,
                PERIOD.start + timedelta(days=d),
                i,
                added=rows,
            )
        )
        for i, (d, rows, is_build) in enumerate(builds, start=1)
    ]
    totals = [UsageTotal(m, "p", a, q, q, 0, 0, 0) for m, a, q in usage]
    draft = draft_invoice(agreement, PERIOD, releases, totals)
    (line,) = draft.lines
    if model == "per_1k_records":
        records = sum(rows for d, rows, is_build in builds if is_build and 0 <= d < 31)
        exact = Fraction(amount) * records / 1000
        assert line.source["records"] == records
    elif model == "per_query":
        exact = Fraction(amount) * sum(q for m, a, q in usage if m == "2026-03" and a == "a")
    else:
        exact = Fraction(amount) * flat_share(
            PERIOD.start, PERIOD.end, agreement.term_start, agreement.term_end
        )
    assert draft.total == _round(exact) == line.amount
    assert isinstance(line, InvoiceLine) and draft.currency == "USD"


def _round(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(CENT, ROUND_HALF_UP) if value.denominator < 10**20 else Decimal(round(value * 100)) / 100  # fmt: skip


funds = st.lists(
    st.tuples(
        st.decimals(Decimal("-50"), Decimal("1000000"), places=2),
        st.decimals(Decimal("0"), Decimal("100"), places=3),
        st.dictionaries(st.integers(1, 30), st.integers(0, 10**15), max_size=12),
        st.sampled_from(["USD", "EUR"]),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    inputs=funds,
    carried=st.dictionaries(
        st.tuples(st.integers(1, 40), st.sampled_from(["USD", "EUR"])),
        st.decimals(Decimal("0.01"), Decimal("4.99"), places=2),
        max_size=6,
    ),
    minimum=st.decimals(Decimal("0"), Decimal("5"), places=2),
)
def test_payouts_plus_platform_share_is_the_revenue(
    inputs: list[tuple[Decimal, Decimal, dict[int, int], str]],
    carried: dict[tuple[int, str], Decimal],
    minimum: Decimal,
) -> None:
    carried = {k: v for k, v in carried.items() if v < minimum}  # what an earlier run would carry
    items = [FundInput(f"a{i}", c, r, s, w) for i, (r, s, w, c) in enumerate(inputs)]
    run = build_run(PERIOD, items, carried, minimum, datetime(2026, 4, 2, tzinfo=UTC))
    by_id = {f.agreement_id: f for f in run.funds}
    for item in items:
        fund = by_id[item.agreement_id]
        holders = {u for u, m in item.row_micros.items() if m > 0}
        parts = {ln.user_id: Decimal(ln.agreements[item.agreement_id]["earned"])
                 for ln in run.lines if item.agreement_id in ln.agreements}  # fmt: skip
        assert set(parts) == holders  # nobody without record-days
        assert sum(parts.values(), Decimal(0)) == fund.fund  # to the cent
        assert fund.fund + (fund.revenue - fund.fund) == max(item.revenue, Decimal(0))
        assert Decimal(0) <= fund.fund <= fund.revenue
    for line in run.lines:
        assert line.paid + line.carried_out == line.earned + line.carried_in
        assert line.paid == 0 or line.paid >= minimum
        if line.row_micros == 0:
            assert line.paid == 0 and line.earned == 0  # only carried, never paid without rows
    for currency in ("USD", "EUR"):
        earned = sum((ln.earned for ln in run.lines if ln.currency == currency), Decimal(0))
        assert earned == sum((f.fund for f in run.funds if f.currency == currency), Decimal(0))


@settings(max_examples=300, deadline=None)
@given(
    total=st.decimals(Decimal("0"), Decimal("10000000"), places=2),
    weights=st.dictionaries(st.integers(0, 50), st.integers(0, 10**18), min_size=1, max_size=20),
)
def test_largest_remainder_parts_sum_exactly(total: Decimal, weights: dict[int, int]) -> None:
    whole = sum(weights.values())
    if whole == 0:
        return
    parts = largest_remainder(total, weights)
    assert sum(parts.values(), Decimal(0)) == total
    for key, part in parts.items():
        exact = Fraction(int(total * 100) * weights[key], whole)
        assert abs(Fraction(int(part * 100)) - exact) < 1
        assert weights[key] or part == 0
