"""Partners and agreements in the store, on SQLite and PostgreSQL (the shared `engine` fixture)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from datalease.licensing.load import load_agreement
from datalease.licensing.model import Attestation, LicensingError, check_partner_name
from datalease.licensing.registry import (
    create_agreement,
    get_agreement,
    load_agreements,
    set_agreement_status,
)
from datalease.policy.model import Policy
from datalease.policy.problems import ProblemsError
from datalease.store.db import alembic_config, current_revision, session_scope, upgrade
from datalease.store.licensing import (
    AgreementExistsError,
    PartnerExistsError,
    UnknownAgreementError,
    UnknownPartnerError,
    add_partner,
    get_agreement_record,
    get_partner,
    list_agreements,
    list_partners,
    save_agreement,
)
from datalease.store.models import Base
from datalease.store.provenance import add_attestation

WHEN = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _attestation(agreement_id: str, partner: str) -> Attestation:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return Attestation(
        0,
        agreement_id,
        partner,
        "Ada Signer",
        "dpo@example.org",
        "training",
        ("no_reidentification",),
        start,
        datetime(2030, 1, 1, tzinfo=UTC),
    )


def texts(agreements_dir: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(agreements_dir.glob("*.yaml"))}


def with_partners(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_partner(session, "lumen-labs", "Lumen Labs", "licensing@lumen.example", created_at=WHEN)
        add_partner(session, "sentimetrics", created_at=WHEN)


# --- partners -----------------------------------------------------------------------------------


def test_partners_round_trip(engine: Engine) -> None:
    with session_scope(engine) as session:
        added = add_partner(session, "lumen-labs", "Lumen Labs", " licensing@lumen.example ", created_at=WHEN)
        add_partner(session, "acme")
    assert added.contact == "licensing@lumen.example"
    with session_scope(engine) as session:
        partners = list_partners(session)
        assert [p.name for p in partners] == ["acme", "lumen-labs"]
        lumen = get_partner(session, "lumen-labs")
    assert lumen == added
    assert lumen.created_at == WHEN and lumen.created_at.tzinfo is not None
    acme = partners[0]
    assert (acme.display_name, acme.contact) == ("acme", None)
    assert acme.created_at.tzinfo is not None


def test_duplicate_partner_is_a_clear_error(engine: Engine) -> None:
    with session_scope(engine) as session:
        add_partner(session, "acme", "Acme AI", created_at=WHEN)
    with session_scope(engine) as session:
        with pytest.raises(
            PartnerExistsError, match=r"partner 'acme' already exists \(added 2025-01-02 as 'Acme AI'\)"
        ):
            add_partner(session, "acme", "Another Acme")
        assert [p.display_name for p in list_partners(session)] == ["Acme AI"]  # the session is still usable


@pytest.mark.parametrize("name", ["Acme", "acme labs", "", "-acme", "a" * 64])
def test_partner_name_must_be_a_slug(name: str) -> None:
    with pytest.raises(LicensingError, match="expected a lowercase slug"):
        check_partner_name(name)


def test_unknown_or_invalid_partner(engine: Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(UnknownPartnerError, match="`datalease partner add nobody`"):
            get_partner(session, "nobody")
        with pytest.raises(LicensingError, match="partner name 'Acme Labs': expected a lowercase slug"):
            add_partner(session, "Acme Labs")
        assert list_partners(session) == []


# --- agreements ---------------------------------------------------------------------------------


def test_agreements_round_trip(engine: Engine, policy: Policy, agreements_dir: Path) -> None:
    with_partners(engine)
    sources = texts(agreements_dir)
    with session_scope(engine) as session:
        for name, text in sources.items():
            record, created = create_agreement(session, text, f"{name}.yaml", policy=policy, created_at=WHEN)
            assert created
            assert record.sha256 == hashlib.sha256(text.encode()).hexdigest()
    with session_scope(engine) as session:
        records = list_agreements(session)
        assert [(r.agreement_id, r.partner, r.status) for r in records] == [
            ("lumen-genai-2025", "lumen-labs", "active"),
            ("sentimetrics-us-2025", "sentimetrics", "active"),
        ]
        assert [r.agreement_id for r in list_agreements(session, partner="sentimetrics")] == [
            "sentimetrics-us-2025"
        ]
        assert list_agreements(session, status="draft") == []
        lumen = get_agreement(session, "lumen-genai-2025", policy)
        record = get_agreement_record(session, "lumen-genai-2025")
        assert [a.agreement_id for a in load_agreements(session, policy)] == [r.agreement_id for r in records]
    assert lumen == load_agreement(sources["lumen-genai"], "x", policy=policy)
    assert record.source_text == sources["lumen-genai"]
    assert (record.term_start, record.term_end) == (lumen.term_start, lumen.term_end)
    assert record.created_at == WHEN == record.status_changed_at


def test_creating_the_same_agreement_again_changes_nothing(
    engine: Engine, policy: Policy, agreements_dir: Path
) -> None:
    with_partners(engine)
    text = texts(agreements_dir)["lumen-genai"]
    with session_scope(engine) as session:
        first, _ = create_agreement(session, text, "lumen.yaml", policy=policy)
    with session_scope(engine) as session:
        again, created = create_agreement(session, text, "lumen.yaml", policy=policy)
        assert not created and again == first
        assert len(list_agreements(session)) == 1


def test_unknown_partner_is_a_located_problem(engine: Engine, policy: Policy, agreements_dir: Path) -> None:
    text = texts(agreements_dir)["lumen-genai"]
    with session_scope(engine) as session, pytest.raises(ProblemsError) as info:
        create_agreement(session, text, "lumen.yaml", policy=policy)
    [problem] = info.value.problems
    assert str(problem).startswith("lumen.yaml:4:10: partner: expected a known partner")
    assert "`datalease partner add lumen-labs`" in problem.expected


def test_changed_content_needs_a_new_id(engine: Engine, policy: Policy, agreements_dir: Path) -> None:
    with_partners(engine)
    text = texts(agreements_dir)["lumen-genai"]
    changed = text.replace("amount: 60000000", "amount: 65000000")
    with session_scope(engine) as session:
        create_agreement(session, text, "lumen.yaml", policy=policy)
    with session_scope(engine) as session:
        with pytest.raises(ProblemsError) as info:
            create_agreement(session, changed, "lumen-v2.yaml", policy=policy)
        [problem] = info.value.problems
        assert (problem.line, problem.field) == (3, "agreement")
        assert "already exists with different content (pricing)" in problem.expected
        with pytest.raises(AgreementExistsError, match="lumen-genai-2025-v2"):
            save_agreement(session, load_agreement(changed, "x", policy=policy), changed)


def test_same_id_for_another_partner_is_refused(engine: Engine, policy: Policy, agreements_dir: Path) -> None:
    with_partners(engine)
    text = texts(agreements_dir)["lumen-genai"]
    with session_scope(engine) as session:
        create_agreement(session, text, "lumen.yaml", policy=policy)
    with (
        session_scope(engine) as session,
        pytest.raises(ProblemsError, match="already exists with different content"),
    ):
        create_agreement(
            session, text.replace("partner: lumen-labs", "partner: sentimetrics"), "x.yaml", policy=policy
        )


def second_lumen(text: str, status: str) -> str:
    return (
        text.replace("agreement: lumen-genai-2025", "agreement: lumen-genai-2026")
        .replace("status: active", f"status: {status}")
        .replace("term: {start: 2025-01-01, end: 2026-12-31}", "term: {start: 2026-01-01, end: 2027-12-31}")
    )


def test_overlapping_active_agreements(engine: Engine, policy: Policy, agreements_dir: Path) -> None:
    with_partners(engine)
    text = texts(agreements_dir)["lumen-genai"]
    with session_scope(engine) as session:
        create_agreement(session, text, "lumen.yaml", policy=policy)
    with session_scope(engine) as session, pytest.raises(ProblemsError) as info:
        create_agreement(session, second_lumen(text, "active"), "lumen-2026.yaml", policy=policy)
    [problem] = info.value.problems
    assert (problem.source, problem.line, problem.col, problem.field) == (
        "lumen-2026.yaml",
        3,
        12,
        "agreement",
    )
    assert "overlaps active agreement lumen-genai-2025" in problem.expected
    # As a draft it is stored; it can be activated once the first one is no longer active.
    with session_scope(engine) as session:
        _, created = create_agreement(session, second_lumen(text, "draft"), "lumen-2026.yaml", policy=policy)
        assert created
    with session_scope(engine) as session:  # activating needs the partner's attestation (issue 18)
        add_attestation(session, _attestation("lumen-genai-2026", "lumen-labs"))
    with (
        session_scope(engine) as session,
        pytest.raises(LicensingError, match="cannot activate; it overlaps active agreement lumen-genai-2025"),
    ):
        set_agreement_status(session, "lumen-genai-2026", "active", policy=policy)
    with session_scope(engine) as session:
        set_agreement_status(session, "lumen-genai-2025", "terminated", policy=policy)
        record = set_agreement_status(session, "lumen-genai-2026", "active", policy=policy, at=WHEN)
    assert (record.status, record.status_changed_at) == ("active", WHEN)


def test_status_changes(engine: Engine, policy: Policy, agreements_dir: Path) -> None:
    with_partners(engine)
    text = texts(agreements_dir)["sentimetrics-us"]
    with session_scope(engine) as session:
        create_agreement(session, text, "s.yaml", policy=policy)
        set_agreement_status(session, "sentimetrics-us-2025", "suspended", policy=policy)
    with session_scope(engine) as session:
        assert get_agreement(session, "sentimetrics-us-2025", policy).status == "suspended"
        assert (
            set_agreement_status(session, "sentimetrics-us-2025", "suspended", policy=policy).status
            == "suspended"
        )
        with pytest.raises(
            LicensingError, match="cannot go from suspended to draft; expected one of active, terminated"
        ):
            set_agreement_status(session, "sentimetrics-us-2025", "draft", policy=policy)
        with pytest.raises(LicensingError, match="expected one of draft, active, suspended, terminated"):
            set_agreement_status(session, "sentimetrics-us-2025", "paused", policy=policy)
        set_agreement_status(session, "sentimetrics-us-2025", "terminated", policy=policy)
        with pytest.raises(LicensingError, match="a terminated agreement is final"):
            set_agreement_status(session, "sentimetrics-us-2025", "active", policy=policy)
        with pytest.raises(UnknownAgreementError, match="`datalease agreement list`"):
            set_agreement_status(session, "nope", "active", policy=policy)
    with session_scope(engine) as session:
        # re-creating the same text later leaves the stored status alone
        record, created = create_agreement(session, text, "s.yaml", policy=policy)
        assert (record.status, created) == ("terminated", False)


def test_unknown_agreement(engine: Engine, policy: Policy) -> None:
    with session_scope(engine) as session, pytest.raises(UnknownAgreementError, match="no agreement 'nope'"):
        get_agreement(session, "nope", policy)


# --- schema -------------------------------------------------------------------------------------


def _table_of(diff: Any) -> str | None:
    entry = diff[0] if isinstance(diff, list) else diff
    for part in entry[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if name is not None and hasattr(part, "columns"):
            return str(name)
    strings = [p for p in entry[1:] if isinstance(p, str)]
    return strings[0] if strings else None


def test_models_match_the_migration(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    ours = [d for d in diffs if _table_of(d) in ("partners", "agreements")]
    assert ours == []
    names = set(inspect(engine).get_table_names())
    assert {"partners", "agreements"} <= names


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert current_revision(engine) == "0001"
    assert not {"partners", "agreements"} & set(inspect(engine).get_table_names())
    assert upgrade(engine) != "0001"
    assert {"partners", "agreements"} <= set(inspect(engine).get_table_names())
