"""The "data licensed from this platform" part of a general-purpose AI provider's public training-
content summary (EU AI Act Art. 53(1)(d), the Commission's template: source, categories, time window,
regions, volumes, how opt-outs and reservations were honoured, personal-data handling), for one partner
and one period — computed from the release ledger, the agreements and the forget entries only.

Every number carries the release ids it is summed over, so an auditor can check it in `release list`.
Pure: takes plain records, returns plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datalease.licensing.model import Agreement
from datalease.licensing.rights import training_mining
from datalease.releases.model import Release
from datalease.reporting.period import Period
from datalease.revocation.model import ForgetEntry


@dataclass(frozen=True)
class Number:
    value: int
    release_ids: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "release_ids": self.release_ids}


@dataclass(frozen=True)
class CategoryVolume:
    category: str
    rows_at_end: Number  # rows the partner held at the end of the period (the last release in it)
    rows_added: Number
    rows_removed: Number


@dataclass(frozen=True)
class AgreementSummary:
    agreement_id: str
    purposes: list[str]
    categories: list[str]
    fields: dict[str, list[str]]
    regions_allowed: list[str] | None
    regions_denied: list[str]
    content_window: tuple[str | None, str | None]
    data_as_of: tuple[str, str] | None  # the first and last release's as_of in the period
    releases: list[int]
    volumes: list[CategoryVolume]
    withheld_by_reason: dict[str, Number]  # at the last full build in the period
    forget_by_reason: dict[str, Number]  # forget entries delivered in the period
    forget_rows: Number
    rights: dict[str, str]  # cawg use -> allowed / notAllowed / constrained (posts table)


@dataclass(frozen=True)
class Summary:
    platform: str
    partner: str
    period: Period
    agreements: list[AgreementSummary] = field(default_factory=list)

    @property
    def release_ids(self) -> list[int]:
        return sorted({r for a in self.agreements for r in a.releases})


def _volumes(releases: Sequence[Release], categories: Sequence[str]) -> list[CategoryVolume]:
    out = []
    for category in categories:
        held = [r for r in releases if r.table(category) is not None]
        if not held:
            continue
        last = held[-1]
        table = last.table(category)
        assert table is not None
        ids = [r.release_id for r in held]
        added = sum(t.rows_added for r in held if (t := r.table(category)) is not None)
        removed = sum(t.rows_removed for r in held if (t := r.table(category)) is not None)
        out.append(
            CategoryVolume(
                category,
                Number(table.rows_total, [last.release_id]),
                Number(added, ids),
                Number(removed, ids),
            )
        )
    return out


def summarise(
    platform: str,
    partner: str,
    period: Period,
    agreements: Sequence[Agreement],
    releases: Sequence[Release],
    entries: Sequence[ForgetEntry],
) -> Summary:
    """The summary over the partner's agreements that had a release built in the period."""
    summary = Summary(platform, partner, period)
    for agreement in sorted(agreements, key=lambda a: a.agreement_id):
        if agreement.partner != partner:
            continue
        mine = sorted(
            (r for r in releases if r.agreement_id == agreement.agreement_id and period.contains(r.built_at)),
            key=lambda r: r.release_id,
        )
        if not mine:
            continue
        full = [r for r in mine if r.full_build and r.excluded]
        withheld = (
            {
                code: Number(rows, [full[-1].release_id])
                for code, rows in sorted(full[-1].excluded.items())
                if rows
            }
            if full
            else {}
        )
        delivered = [
            e for e in entries if e.agreement_id == agreement.agreement_id and period.contains(e.delivered_at)
        ]
        by_reason: dict[str, Number] = {}
        for entry in delivered:
            known = by_reason.get(entry.reason_code, Number(0, []))
            ids = sorted({*known.release_ids, entry.release_id})
            by_reason[entry.reason_code] = Number(known.value + 1, ids)
        rows = Number(sum(e.rows for e in delivered), sorted({e.release_id for e in delivered}))
        summary.agreements.append(
            AgreementSummary(
                agreement_id=agreement.agreement_id,
                purposes=list(agreement.purposes),
                categories=list(agreement.categories),
                fields={c: list(agreement.fields[c]) for c in agreement.categories},
                regions_allowed=None
                if agreement.regions_allowed is None
                else list(agreement.regions_allowed),
                regions_denied=list(agreement.regions_denied),
                content_window=(
                    agreement.content_from.isoformat() if agreement.content_from else None,
                    agreement.content_until.isoformat() if agreement.content_until else None,
                ),
                data_as_of=(mine[0].as_of.isoformat(), mine[-1].as_of.isoformat()),
                releases=[r.release_id for r in mine],
                volumes=_volumes(mine, agreement.categories),
                withheld_by_reason=withheld,
                forget_by_reason=dict(sorted(by_reason.items())),
                forget_rows=rows,
                rights={k: v.use for k, v in training_mining(agreement, "posts").items()},
            )
        )
    return summary
