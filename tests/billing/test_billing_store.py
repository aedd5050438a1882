"""Issued invoices and payout runs in the store (SQLite and PostgreSQL): round trip, numbering, and
the append-only triggers: UPDATE and DELETE refused on every billing table, TRUNCATE on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData
from sqlalchemy.exc import DBAPIError, IntegrityError

from datalease.billing.documents import body_sha256, issue, lines_of
from datalease.billing.invoices import credit_note_for
from datalease.billing.model import (
    KIND_CREDIT_NOTE,
    KIND_INVOICE,
    Fund,
    InvoiceDraft,
    InvoiceLine,
    PayoutLine,
    PayoutRun,
)
from datalease.licensing.registry import create_agreement
from datalease.policy.load import load_policy
from datalease.store import Base, session_scope
from datalease.store.billing import (
    credited,
    get_invoice,
    get_payout_run,
    list_invoices,
    next_sequence,
    payout_lines_for_user,
    save_invoice,
    save_payout_run,
)
from datalease.store.billing_rows import BILLING_TABLES
from datalease.store.licensing import add_partner

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "datalease" / "examples"
AT = datetime(2026, 7, 2, 9, tzinfo=UTC)


def _seed(engine: Engine) -> None:
    policy = load_policy((EXAMPLES / "x-2024.yaml").read_text(), "x-2024.yaml")
    with session_scope(engine) as session:
        add_partner(session, "lumen-labs", "Lumen Labs")
        text = (EXAMPLES / "agreements" / "lumen-genai.yaml").read_text()
        create_agreement(session, text, "lumen.yaml", policy=policy)
        line = InvoiceLine(
            "Licence fee", "0.08 contract years", Decimal("60000000"), Decimal("4931506.85"), {"x": 1}
        )
        draft = InvoiceDraft(KIND_INVOICE, "lumen-genai-2025", "lumen-labs", "2026-06", "USD", (line,))
        save_invoice(session, issue(draft, next_sequence(session, KIND_INVOICE), AT))
        run = PayoutRun(
            "2026-06",
            AT,
            Decimal("5.00"),
            (Fund("lumen-genai-2025", "USD", Decimal("10.00"), Decimal("20"), Decimal("2.00"), 10**19, 2),),
            (
                PayoutLine(
                    7, "USD", Decimal("1.50"), Decimal("0.00"), Decimal("0.00"), Decimal("1.50"), 3, {"a": {}}
                ),
                PayoutLine(
                    9, "USD", Decimal("0.50"), Decimal("4.50"), Decimal("5.00"), Decimal("0.00"), 1, {}
                ),
            ),
        )
        save_payout_run(session, run)


def test_models_match_the_migration(engine: Engine) -> None:
    mine = MetaData()
    for name in ("partners", "agreements", *BILLING_TABLES):  # the referenced tables too
        Base.metadata.tables[name].to_metadata(mine)

    def only_mine(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in BILLING_TABLES

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False, "include_name": only_mine})
        diff = compare_metadata(context, mine)
    assert [d for d in diff if _table_of(d) in BILLING_TABLES] == []


def _table_of(item: object) -> str | None:
    """The table a diff item of compare_metadata is about (items are tuples, or lists of tuples)."""
    if isinstance(item, list):
        return _table_of(item[0])
    assert isinstance(item, tuple)
    thing = item[1]
    if hasattr(thing, "table"):
        return str(thing.table.name)
    if hasattr(thing, "name") and item[0].endswith("_table"):
        return str(thing.name)
    return str(item[2]) if len(item) > 2 and isinstance(item[2], str) else None


def test_invoices_and_runs_round_trip(engine: Engine) -> None:
    _seed(engine)
    with session_scope(engine) as session:
        (inv,) = list_invoices(session)
        assert inv.number == "INV-000001" and inv.total == Decimal("4931506.85")
        assert inv.sha256 == body_sha256(inv) and inv.issued_at == AT
        assert lines_of(inv)[0].source == {"x": 1}
        assert next_sequence(session, KIND_INVOICE) == 2 and next_sequence(session, KIND_CREDIT_NOTE) == 1
        run = get_payout_run(session, "2026-06")
        assert run is not None and run.funds[0].row_micros == 10**19  # beyond 64 bits, kept exactly
        assert [ln.paid for ln in run.lines] == [Decimal("0.00"), Decimal("5.00")]
        assert payout_lines_for_user(session, 9)[0][1].carried_in == Decimal("4.50")


def test_a_number_is_never_issued_twice(engine: Engine) -> None:
    _seed(engine)
    with session_scope(engine) as session:
        original = get_invoice(session, "INV-000001")
        assert original is not None
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        save_invoice(session, original)


def test_a_credit_note_refers_to_its_invoice(engine: Engine) -> None:
    _seed(engine)
    with session_scope(engine) as session:
        original = get_invoice(session, "INV-000001")
        assert original is not None
        note = issue(
            credit_note_for(original, lines_of(original)), next_sequence(session, KIND_CREDIT_NOTE), AT
        )
        save_invoice(session, note)
    with session_scope(engine) as session:
        assert credited(session) == {"INV-000001"}
        stored = get_invoice(session, "CN-000001")
        assert stored is not None and stored.total == -original.total and stored.refers_to == "INV-000001"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE invoices SET total = '0.00'",
        "UPDATE invoices SET body = '{}'",
        "DELETE FROM invoices",
        "UPDATE payout_runs SET minimum = '0.00'",
        "DELETE FROM payout_runs",
        "UPDATE payout_funds SET fund = '0.00'",
        "DELETE FROM payout_funds",
        "UPDATE payout_lines SET paid = '1000.00'",
        "DELETE FROM payout_lines",
    ],
)
def test_the_store_refuses_changes(engine: Engine, statement: str) -> None:
    _seed(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    with session_scope(engine) as session:
        inv = get_invoice(session, "INV-000001")
        assert inv is not None and inv.total == Decimal("4931506.85") and inv.sha256 == body_sha256(inv)
        run = get_payout_run(session, "2026-06")
        assert run is not None and len(run.lines) == 2 and run.funds[0].fund == Decimal("2.00")


@pytest.mark.postgres
@pytest.mark.parametrize("table", BILLING_TABLES)
def test_truncate_refused_on_postgres(postgres_url: str, table: str) -> None:
    from datalease.store import make_engine, upgrade

    engine = make_engine(postgres_url)
    try:
        upgrade(engine)
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {table} CASCADE")
    finally:
        engine.dispose()
