"""Which declared models hold whose data, and which are due or overdue (pure, issue 18).

A model declared as trained on release R of an agreement holds every row R served. When a forget entry
is delivered in release F, every model of that agreement declared on a release before F (they were
trained on data that still held the subject) must be retrained without it or covered by a certificate,
by the entry's deadline: a per-model acknowledgement says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from datalease.licensing.model import ModelAck, ModelLineage
from datalease.revocation.model import ForgetEntry


def models_of(lineage: Sequence[ModelLineage], agreement_id: str, first: int, last: int) -> list[str]:
    """Models of the agreement declared on a release from `first` to `last` (inclusive)."""
    return sorted(
        {m.model_id for m in lineage if m.agreement_id == agreement_id and first <= m.release_id <= last}
    )


def due_models(entry: ForgetEntry, lineage: Sequence[ModelLineage]) -> list[str]:
    """The models that must answer for `entry`: declared on a release of its agreement before it."""
    return sorted(
        {
            m.model_id
            for m in lineage
            if m.agreement_id == entry.agreement_id and m.release_id < entry.release_id
        }
    )


@dataclass(frozen=True)
class ModelsLine:
    """ "Your data is in N declared models; M have been retrained without it (certificate), K are due by D"."""

    agreement_id: str
    partner: str
    declared: list[str]
    answered: dict[str, str]  # model -> "retrained" or "certificate: …"
    due: list[str]
    deadline: datetime | None

    def sentence(self) -> str:
        n, m, k = len(self.declared), len(self.answered), len(self.due)
        text = f"your data is in {n} declared model{'' if n == 1 else 's'}"
        if m:
            detail = ", ".join(f"{model} ({how})" for model, how in sorted(self.answered.items()))
            text += f"; {m} {'has' if m == 1 else 'have'} been retrained without it or certified: {detail}"
        if k and self.deadline is not None:
            text += f"; {k} {'is' if k == 1 else 'are'} due by {self.deadline:%Y-%m-%d %H:%M} UTC"
        return text


def models_line(
    agreement_id: str,
    partner: str,
    first_release: int | None,
    last_release: int | None,
    entries: Sequence[ForgetEntry],
    lineage: Sequence[ModelLineage],
    acks: Sequence[ModelAck],
) -> ModelsLine:
    """One person's line for one agreement: their releases, their forget entries, the partner's facts."""
    releases = [r for r in (first_release, last_release) if r is not None]
    releases += [e.release_id for e in entries]
    if not releases:
        return ModelsLine(agreement_id, partner, [], {}, [], None)
    declared = models_of(lineage, agreement_id, min(releases), max(releases))
    mine = {e.forget_id for e in entries}
    answered = {
        a.model_id: a.outcome if a.outcome == "retrained" else f"certificate: {a.certificate or '-'}"
        for a in acks
        if a.forget_id in mine and a.model_id in declared
    }
    owing = [e for e in entries if set(due_models(e, lineage)) - set(answered)]
    due = sorted({m for e in owing for m in due_models(e, lineage)} - set(answered))
    deadline = min((e.deadline for e in owing), default=None)
    return ModelsLine(agreement_id, partner, declared, answered, due, deadline)


@dataclass(frozen=True)
class PartnerOverdue:
    partner: str
    overdue_models: list[str]  # models past an entry's deadline without a per-model answer
    entries: int  # forget entries with at least one such model
    blocked_agreements: list[str]  # agreements whose next build this blocks (agreement setting)


def overdue(
    entries: Sequence[ForgetEntry], lineage: Sequence[ModelLineage], acks: Sequence[ModelAck], now: datetime
) -> dict[str, tuple[set[str], set[str], int]]:
    """agreement -> (partner, overdue models, entries) for entries past their deadline."""
    answered = {(a.forget_id, a.model_id) for a in acks}
    out: dict[str, tuple[set[str], set[str], int]] = {}
    for entry in entries:
        if now <= entry.deadline:
            continue
        missing = {m for m in due_models(entry, lineage) if (entry.forget_id, m) not in answered}
        if missing:
            partners, models, count = out.get(entry.agreement_id, (set(), set(), 0))
            out[entry.agreement_id] = (partners | {entry.partner}, models | missing, count + 1)
    return out
