"""What each page shows, assembled from the domain and the store (no HTTP, no HTML here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from datalease.licensing.model import describe_term
from datalease.licensing.pricing import charge_agreement
from datalease.policy.diff import diff_policies
from datalease.policy.model import Policy
from datalease.policy.resolve import outcome
from datalease.policy.vocabulary import MASTER_KEY, category_key, partner_block_key, purpose_key
from datalease.releases.model import Release
from datalease.reporting.compliance import Compliance
from datalease.services import licensing, releases, revocation, sharing
from datalease.services import policy as policy_service
from datalease.workspace import Workspace

GENERATIVE = "train_ai_system.generative"
CATEGORY_TEXT = {
    "posts": "Your posts (text, language, time, and the sentiment we compute; never your name or handle).",
    "likes": "Which posts you liked.",
    "reposts": "Which posts you reposted.",
    "bookmarks": "Which posts you bookmarked.",
    "profile": "Your profile: country and account age bracket.",
}


@dataclass(frozen=True)
class Toggle:
    key: str
    label: str
    explanation: str
    on: bool
    explicit: bool  # the user set it (else it shows the default)
    default_on: bool
    disabled: bool = False


@dataclass(frozen=True)
class SettingsView:
    user_id: int
    handle: str
    region: str
    policy_version: str | None
    mechanism: str  # for posts used to train generative AI, in the user's region, now
    master: Toggle
    categories: list[Toggle]
    purpose: Toggle
    partners: list[Toggle]
    scheduled: str | None  # a plain-language note about the next policy version


def _mechanism(policy: Policy, region: str, category: str, at: datetime) -> str:
    version = policy.version_at(at)
    return outcome(policy, version, region, category, GENERATIVE, at).mechanism if version else "excluded"


def settings_view(
    ws: Workspace, policy: Policy, user_id: int, handle: str, country: str, now: datetime
) -> SettingsView:
    region = policy.region_of(country)
    state = ws.consent_at(user_id, now)
    mechanism = _mechanism(policy, region, "posts", now)
    excluded = mechanism == "excluded"
    master_explicit = MASTER_KEY in state
    master = Toggle(
        MASTER_KEY,
        "Data sharing with business partners",
        "Let the platform license your public activity to partners (for example AI companies training "
        "models). Turning this off withdraws what was shared: partners must delete it.",
        state.get(MASTER_KEY, True) and not excluded,
        master_explicit,
        True,
        disabled=excluded,
    )
    categories = []
    for category in policy.categories:
        mech = _mechanism(policy, region, category, now)
        default_on = mech == "opt_out"
        key = category_key(category)
        categories.append(
            Toggle(
                key,
                category.capitalize(),
                CATEGORY_TEXT.get(category, "")
                + (" Shared only if you turn it on." if mech == "opt_in" else "")
                + (" Never shared in your region." if mech == "excluded" else ""),
                state.get(key, default_on) and mech != "excluded",
                key in state,
                default_on,
                disabled=mech == "excluded",
            )
        )
    pkey = purpose_key(GENERATIVE)
    purpose = Toggle(
        pkey,
        "Training generative AI",
        "Allow partners to train generative AI models (chatbots, image generators) on your data.",
        state.get(pkey, True),
        pkey in state,
        True,
    )
    partners = licensing.partners(ws)
    blocks = [
        Toggle(
            partner_block_key(p.name),
            f"Block {p.display_name}",
            f"Never share anything with {p.display_name}, whatever else you allow.",
            state.get(partner_block_key(p.name), False),
            partner_block_key(p.name) in state,
            False,
        )
        for p in partners
    ]
    version = policy.version_at(now)
    upcoming = policy.next_version_after(now)
    scheduled = None
    if upcoming is not None:
        later = outcome(policy, upcoming, region, "posts", GENERATIVE, upcoming.effective_from).mechanism
        when = f"{upcoming.effective_from:%-d %b %Y}"
        scheduled = {
            "opt_out": f"From {when} your posts will be shared unless you opt out.",
            "opt_in": f"From {when} your posts will be shared only if you opt in.",
            "excluded": f"From {when} nothing of yours will be shared in your region.",
        }[later]
    return SettingsView(
        user_id,
        handle,
        "other regions (*)" if region == "*" else region,
        version.version_id if version else None,
        mechanism,
        master,
        categories,
        purpose,
        blocks,
        scheduled,
    )


def all_toggles(view: SettingsView) -> list[Toggle]:
    return [view.master, *view.categories, view.purpose, *view.partners]


def changed_settings(view: SettingsView, submitted: set[str]) -> dict[str, bool]:
    """The settings whose value the form changed (a checkbox absent from the form is off)."""
    return {
        t.key: t.key in submitted
        for t in all_toggles(view)
        if not t.disabled and (t.key in submitted) != t.on
    }


# --- operator --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementLine:
    agreement_id: str
    partner: str
    status: str
    term: str
    categories: str
    purposes: str
    regions: str
    pricing: str
    sla_hours: int


def agreements_view(ws: Workspace, policy: Policy) -> list[AgreementLine]:
    lines = []
    for a in licensing.parsed_agreements(ws):
        regions = "everywhere" if a.regions_allowed is None else ", ".join(a.regions_allowed)
        if a.regions_denied:
            regions += " except " + ", ".join(a.regions_denied)
        lines.append(
            AgreementLine(
                a.agreement_id,
                a.partner,
                a.status,
                describe_term(a.term_start, a.term_end),
                ", ".join(a.categories),
                ", ".join(a.purposes),
                regions,
                f"{a.pricing.model} {a.pricing.amount:,} {a.pricing.currency}",
                a.deletion_sla_hours,
            )
        )
    return lines


def releases_view(ws: Workspace) -> list[Release]:
    return list(reversed(releases.releases(ws)))


@dataclass(frozen=True)
class RevenueLine:
    month: str
    partner: str
    agreement_id: str
    queries: int
    rows: int
    bytes: int
    amount: Decimal
    currency: str


@dataclass
class RevenueView:
    lines: list[RevenueLine]
    months: list[str]
    partners: list[str]
    totals: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (month, partner) → amount
    currency: str = ""
    bars: list[dict[str, object]] = field(default_factory=list)  # SVG rectangles for the chart


def revenue_view(ws: Workspace, policy: Policy) -> RevenueView:
    totals = sharing.usage(ws)
    agreements = {a.agreement_id: a for a in licensing.parsed_agreements(ws)}
    lines = []
    for t in totals:
        agreement = agreements.get(t.agreement_id)
        if agreement is None:
            continue
        year, number = (int(x) for x in t.month.split("-"))
        start = datetime(year, number, 1, tzinfo=UTC)
        end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
        amount = charge_agreement(
            agreement, period_start=start, period_end=end, records=t.rows, queries=t.queries
        )
        lines.append(
            RevenueLine(
                t.month,
                t.partner,
                t.agreement_id,
                t.queries,
                t.rows,
                t.bytes,
                amount,
                agreement.pricing.currency,
            )
        )
    view = RevenueView(lines, sorted({x.month for x in lines}), sorted({x.partner for x in lines}))
    for line in lines:
        key = (line.month, line.partner)
        view.totals[key] = view.totals.get(key, Decimal(0)) + line.amount
        view.currency = line.currency
    top = max(view.totals.values(), default=Decimal(0))
    width = 60
    for i, month in enumerate(view.months):
        y = 200.0
        for j, partner in enumerate(view.partners):
            amount = view.totals.get((month, partner), Decimal(0))
            height = float(amount / top * 180) if top else 0.0
            y -= height
            view.bars.append(
                {
                    "x": 40 + i * (width + 20),
                    "y": y,
                    "w": width,
                    "h": height,
                    "series": j,
                    "label": f"{partner} {month}: {amount:,.2f}",
                }
            )
    return view


def compliance_view(ws: Workspace) -> Compliance:
    return revocation.compliance_report(ws)


@dataclass(frozen=True)
class PolicyRevisionLine:
    id: int
    name: str
    applied_at: datetime
    applied_by: str
    versions: list[str]
    changes: list[str]  # against the revision before it


def policy_view(ws: Workspace) -> list[PolicyRevisionLine]:
    lines = []
    previous: Policy | None = None
    for revision in policy_service.revisions(ws):
        changes = diff_policies(previous, revision.policy) if previous is not None else ["first revision"]
        lines.append(
            PolicyRevisionLine(
                revision.id,
                revision.name,
                revision.applied_at,
                revision.applied_by,
                [f"{v.version_id} from {v.effective_from:%Y-%m-%d}" for v in revision.policy.versions],
                changes,
            )
        )
        previous = revision.policy
    return list(reversed(lines))
