"""Provenance (issue 18): partners' attestations, model lineage and per-model acknowledgements, and
the checks a build runs (a lapsed attestation, overdue models when the agreement blocks on them).

Every refusal raises UserError naming the input and records nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from datalease.errors import UserError
from datalease.licensing.model import (
    ACK_OUTCOMES,
    Agreement,
    Attestation,
    LicensingError,
    ModelAck,
    ModelLineage,
)
from datalease.licensing.registry import get_agreement
from datalease.licensing.rights import PROHIBITED_USE_CODES
from datalease.reporting.ai_act import Summary, summarise
from datalease.reporting.model_lineage import ModelsLine, PartnerOverdue, due_models, models_line, overdue
from datalease.reporting.period import parse_period
from datalease.reporting.user_report import AgreementReport, user_report
from datalease.store.forget import acknowledge, forget_entries
from datalease.store.licensing import get_agreement_record, list_agreements, list_partners
from datalease.store.provenance import (
    MODEL_ID_LENGTH,
    add_attestation,
    add_lineage,
    add_model_acks,
    attestations,
    forget_entry_owners,
    lineage,
    model_acks,
)
from datalease.store.releases import get_release, list_releases
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def _agreement(ws: Workspace, agreement_id: str) -> Agreement:
    with ws.session() as session:
        try:
            return get_agreement(session, agreement_id, ws.require_policy())
        except LicensingError as exc:
            raise UserError(f"agreement {agreement_id!r}: no such agreement ({exc})") from exc


# --- attestations ---------------------------------------------------------------------------------


def record_attestation(
    ws: Workspace,
    agreement_id: str,
    *,
    signer: str,
    contact: str,
    intended_use: str,
    accepted: Sequence[str],
    partner: str | None = None,
    at: datetime | None = None,
) -> Attestation:
    """Record a partner's attestation for an agreement; valid for the agreement's renewal period.

    `partner` (when the partner itself calls) must be the agreement's partner. Every prohibited use
    (PROHIBITED_USE_CODES) must be accepted; signer, contact and intended use must be given.
    """
    agreement = _agreement(ws, agreement_id)
    if partner is not None and partner != agreement.partner:
        raise UserError(f"agreement {agreement_id!r}: no such agreement of partner {partner}")
    missing = [c for c in PROHIBITED_USE_CODES if c not in accepted]
    unknown = [c for c in accepted if c not in PROHIBITED_USE_CODES]
    if missing or unknown:
        raise UserError(
            f"accepted_prohibited_uses: expected every one of {', '.join(PROHIBITED_USE_CODES)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    for name, value, limit in (
        ("signer", signer, 200),
        ("contact", contact, 320),
        ("intended_use", intended_use, 4000),
    ):
        if not value.strip() or len(value) > limit:
            raise UserError(f"{name}: expected a non-empty text of at most {limit} characters")
    when = at or utc_now()
    attestation = Attestation(
        0,
        agreement_id,
        agreement.partner,
        signer.strip(),
        contact.strip(),
        intended_use.strip(),
        tuple(PROHIBITED_USE_CODES),
        when,
        when + timedelta(days=agreement.attestation_renewal_days),
    )
    with ws.write_session() as session, session.begin():
        return add_attestation(session, attestation)


@dataclass(frozen=True)
class AttestationState:
    agreement_id: str
    state: str  # missing | valid | lapsed
    latest: Attestation | None


def attestation_state(ws: Workspace, agreement_id: str, at: datetime | None = None) -> AttestationState:
    when = at or utc_now()
    with ws.session() as session:
        get_agreement_record(session, agreement_id)
        found = attestations(session, agreement_id)
    latest = found[-1] if found else None
    if latest is None:
        return AttestationState(agreement_id, "missing", None)
    return AttestationState(agreement_id, "valid" if latest.valid_at(when) else "lapsed", latest)


# --- lineage --------------------------------------------------------------------------------------


def _model_id(value: str) -> str:
    if not value or len(value) > MODEL_ID_LENGTH or not value.isprintable():
        raise UserError(
            f"model {value[:40]!r}: expected a printable model version id of 1 to {MODEL_ID_LENGTH} characters"
        )
    return value


def release_of_table_version(ws: Workspace, partner: str, share: str, table: str, version: int) -> int:
    """The release of the partner's share that pinned `table` at Delta `version` (what a partner that
    only knows the version it synced names); refused when there is none."""
    with ws.session() as session:
        records = {r.agreement_id for r in list_agreements(session, partner=partner)}
        found = [
            r.release_id
            for r in (list_releases(session, share) if share in records else [])
            if (t := r.table(table)) is not None and t.table_version == version
        ]
    if not found:
        raise UserError(f"{share}.{table} version {version}: {partner} never received such a release")
    return found[-1]


def declare_lineage(ws: Workspace, partner: str, declarations: Sequence[tuple[str, int]]) -> int:
    """Declare that model `model_id` was trained on release `release_id` (all or none); returns how many
    were new. A release the partner never received (unknown, or another partner's) is refused."""
    facts = []
    with ws.session() as session:
        for index, (model_id, release_id) in enumerate(declarations):
            release = get_release(session, release_id)
            owner = None if release is None else get_agreement_record(session, release.agreement_id).partner
            if release is None or owner != partner:
                raise UserError(
                    f"declarations[{index}].release_id: {partner} never received release {release_id}"
                )
            facts.append(
                ModelLineage(partner, _model_id(model_id), release.agreement_id, release_id, utc_now())
            )
    with ws.write_session() as session, session.begin():
        return add_lineage(session, facts)


def partner_lineage(ws: Workspace, partner: str) -> list[ModelLineage]:
    with ws.session() as session:
        return lineage(session, partner=partner)


@dataclass(frozen=True)
class ModelAckResult:
    models_recorded: int
    acknowledged: int  # forget entries now acknowledged (every model due for them answered)
    still_due: dict[str, list[str]]  # forget id -> models still due


def acknowledge_models(
    ws: Workspace, partner: str, forget_ids: Sequence[str], models: Sequence[tuple[str, str, str | None]]
) -> ModelAckResult:
    """Per forget entry, what happened to each model (`(model_id, outcome, certificate)`, outcome
    retrained | certificate). Refused, nothing recorded: an id not the partner's, an unknown outcome,
    a certificate outcome without a certificate, or a model the partner never declared for the entry's
    agreement. An entry is acknowledged once every model due for it has answered."""
    ids = list(dict.fromkeys(forget_ids))
    now = utc_now()
    with ws.session() as session:
        owners = forget_entry_owners(session, ids)
        facts = lineage(session, partner=partner)
        entries = {
            e.forget_id: e for e in forget_entries(session, partner=partner) if e.forget_id in set(ids)
        }
        earlier = model_acks(session, ids)
    foreign = [i for i in ids if owners.get(i, ("", ""))[0] != partner]
    if foreign:
        raise UserError(f"ids: {len(foreign)} id(s) are not forget entries of {partner}, e.g. {foreign[0]!r}")
    acks = []
    for index, (model_id, outcome, certificate) in enumerate(models):
        if outcome not in ACK_OUTCOMES:
            raise UserError(
                f"models[{index}].outcome: {outcome!r}: expected one of {', '.join(ACK_OUTCOMES)}"
            )
        if outcome == "certificate" and not (certificate or "").strip():
            raise UserError(f"models[{index}].certificate: expected the certificate of model {model_id}")
        for forget_id in ids:
            agreement = owners[forget_id][1]
            if not any(f.model_id == model_id and f.agreement_id == agreement for f in facts):
                raise UserError(
                    f"models[{index}].model_id: {model_id!r} is not a model {partner} declared for {agreement}; "
                    "declare its lineage first (POST /api/v1/partner/lineage)"
                )
            acks.append(ModelAck(forget_id, model_id, outcome, certificate, now))
    answered = {(a.forget_id, a.model_id) for a in [*earlier, *acks]}
    still = {i: [m for m in due_models(entries[i], facts) if (i, m) not in answered] for i in ids}
    complete = [i for i, due in still.items() if not due]
    with ws.write_session() as session, session.begin():
        recorded = add_model_acks(session, acks)
        summary = "; ".join(f"{m}: {o}" + (f" ({c})" if c else "") for m, o, c in models) or None
        fresh, _ = acknowledge(session, partner, complete, summary, now) if complete else (0, 0)
    return ModelAckResult(recorded, fresh, {i: d for i, d in still.items() if d})


# --- views ----------------------------------------------------------------------------------------


def models_lines(
    ws: Workspace, user_id: int, reports: Sequence[AgreementReport] | None = None
) -> list[ModelsLine]:
    """Per agreement that received the person's data: the declared models and what they owe
    (`reports`: the person's user_report when the caller has it already)."""
    reports = user_report(ws, user_id) if reports is None else reports
    with ws.session() as session:
        facts = lineage(session)
        acks = model_acks(session)
        entries = forget_entries(session)
    out = []
    for report in reports:
        if report.first_release is None and not report.forget:
            continue
        mine = {f.id for f in report.forget}
        out.append(
            models_line(
                report.agreement_id,
                report.partner,
                report.first_release,
                report.last_release,
                [e for e in entries if e.forget_id in mine],
                facts,
                acks,
            )
        )
    return out


def partners_by_overdue(ws: Workspace, now: datetime | None = None) -> list[PartnerOverdue]:
    """Partners with overdue models (most first), and the agreements whose next build that blocks."""
    when = now or utc_now()
    with ws.session() as session:
        found = overdue(
            forget_entries(session, unacknowledged=True), lineage(session), model_acks(session), when
        )
        records = {r.agreement_id: r for r in list_agreements(session)}
    policy = ws.require_policy()
    by_partner: dict[str, tuple[set[str], int, list[str]]] = {}
    for agreement_id, (partners, models, count) in found.items():
        blocks = _agreement_blocks(ws, agreement_id, policy) if agreement_id in records else False
        for partner in partners:
            held, total, blocked = by_partner.get(partner, (set(), 0, []))
            by_partner[partner] = (held | models, total + count, blocked + ([agreement_id] if blocks else []))
    lines = [PartnerOverdue(p, sorted(m), n, sorted(b)) for p, (m, n, b) in by_partner.items()]
    return sorted(lines, key=lambda line: (-len(line.overdue_models), line.partner))


def _agreement_blocks(ws: Workspace, agreement_id: str, _policy: object) -> bool:
    return _agreement(ws, agreement_id).block_release_when_overdue


def check_build_allowed(ws: Workspace, agreement_id: str, now: datetime | None = None) -> None:
    """Refuse a build when the agreement's attestation lapsed, or when it blocks on overdue models and
    some are overdue (called before a build writes anything)."""
    when = now or utc_now()
    try:
        state = attestation_state(ws, agreement_id, when)
    except LicensingError:
        return  # an unknown agreement: the build says so in its own words
    if state.state == "lapsed" and state.latest is not None:
        raise UserError(
            f"agreement {agreement_id}: the partner's attestation lapsed on {state.latest.valid_until:%Y-%m-%d}; "
            "no new rows until it is renewed (`datalease attestation record` or POST /api/v1/partner/attestation)"
        )
    agreement = _agreement(ws, agreement_id)
    if agreement.block_release_when_overdue:
        with ws.session() as session:
            found = overdue(
                forget_entries(session, agreement_id=agreement_id, unacknowledged=True),
                lineage(session, agreement_id=agreement_id),
                model_acks(session),
                when,
            )
        if agreement_id in found:
            models = sorted(found[agreement_id][1])
            raise UserError(
                f"agreement {agreement_id}: {len(models)} model(s) overdue for forget entries "
                f"({', '.join(models)}); block_release_when_overdue stops the next release until they answer"
            )


# --- the AI Act summary ---------------------------------------------------------------------------


def ai_act_summary(ws: Workspace, partner: str, period: str) -> Summary:
    """`datalease summary PARTNER --period P`: from the release ledger, agreements and forget entries."""
    span = parse_period(period)
    policy = ws.require_policy()
    with ws.session() as session:
        records = list_agreements(session, partner=partner)
        if not records and not any(p.name == partner for p in list_partners(session)):
            raise UserError(f"partner {partner!r}: no such partner; see `datalease partner list`")
        agreements = [get_agreement(session, r.agreement_id, policy) for r in records]
        releases = [r for a in agreements for r in list_releases(session, a.agreement_id)]
        entries = forget_entries(session, partner=partner)
    return summarise(policy.name, partner, span, agreements, releases, entries)
