"""The dataset card shipped in each share: Hugging Face-style YAML front matter, then prose."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ruamel.yaml import YAML


@dataclass(frozen=True)
class TableCard:
    category: str
    version: int
    rows: int
    columns: Sequence[str]
    added: int
    removed: int


@dataclass(frozen=True)
class CardFacts:
    agreement_id: str
    partner: str
    release_id: int
    built_at: datetime
    as_of: datetime
    policy_name: str
    policy_version: str | None
    consent_watermark: int
    purposes: Sequence[str]
    regions_allowed: Sequence[str] | None
    regions_denied: Sequence[str]
    content_window: tuple[datetime | None, datetime | None]
    term: tuple[datetime, datetime]
    pricing: str
    deletion_sla_hours: int
    tables: Sequence[TableCard]
    excluded: Mapping[str, int]  # reason code -> rows withheld in this release
    excluded_sample_every: int
    hard_exclusions: Sequence[str]
    # table -> CAWG-style training-and-data-mining assertion (licensing/rights.py)
    rights: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    consent_head_hash: str = ""  # issue 15: the chain head partners keep as a witness


PROHIBITED_USES = (
    "re-identifying any person, or linking keys to identities or to keys of another agreement",
    "keeping or using any row after it is deleted in the change feed or listed in the forget table",
    "purposes outside those licensed in this agreement",
    "redistribution to third parties",
)


REIDENTIFICATION_RISK = (
    "## Re-identification risk",
    "",
    "Pseudonymous keys are not anonymity. The posts are public on the platform: anyone holding a post's text "
    "(even scrubbed) can search the platform for it and find its author, and through `user_key` every other "
    "post, like or repost of theirs in this share. Timestamps, languages, countries and writing style narrow "
    "it further. The platform cannot prevent this technically; it is prohibited by this agreement (see "
    "`rights` in the front matter: every licensed use is `constrained` by no re-identification), and the "
    "keys of this agreement differ from those of every other agreement, so shares cannot be joined on them.",
    "",
)


def _plain(value: object) -> object:
    """Nested mappings as plain dicts (what the YAML writer dumps as block mappings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def render_card(facts: CardFacts) -> str:
    front = {
        "pretty_name": f"{facts.partner} — {facts.agreement_id}",
        "license": "other",
        "license_name": f"datalease agreement {facts.agreement_id}",
        "release": facts.release_id,
        "built_at": facts.built_at.isoformat(),
        "as_of": facts.as_of.isoformat(),
        "policy": {"name": facts.policy_name, "version": facts.policy_version},
        "consent_watermark": facts.consent_watermark,
        "consent_ledger_head": {"seq": facts.consent_watermark, "hash": facts.consent_head_hash},
        "purposes": list(facts.purposes),
        "configs": [
            {"config_name": t.category, "table_version": t.version, "num_rows": t.rows} for t in facts.tables
        ],
        "tags": ["consent-filtered", "pseudonymised", "pii-scrubbed", "revocable"],
    }
    if facts.rights:
        front["rights"] = {table: _plain(a) for table, a in facts.rights.items()}
    buffer = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(front, buffer)
    lines = [
        "---",
        buffer.getvalue().rstrip(),
        "---",
        "",
        f"# {facts.agreement_id} — data licensed to {facts.partner}",
        "",
    ]
    lines += [
        f"Release {facts.release_id}, built {facts.built_at:%Y-%m-%d %H:%M} UTC from the platform's data as of "
        f"{facts.as_of:%Y-%m-%d %H:%M} UTC under policy `{facts.policy_name}` version `{facts.policy_version}` "
        f"and the consent ledger up to event #{facts.consent_watermark} (chain hash `{facts.consent_head_hash}`; "
        "keep this card: `datalease consent verify --anchor` proves no later event was deleted or changed).",
        "",
        "## Tables",
        "",
        "| table | version | rows | added | removed | columns |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t.category} | {t.version} | {t.rows} | {t.added} | {t.removed} | {', '.join(t.columns)} |"
        for t in facts.tables
    ]
    start, end = facts.content_window
    regions = "every region" if facts.regions_allowed is None else ", ".join(facts.regions_allowed)
    if facts.regions_denied:
        regions += f" except {', '.join(facts.regions_denied)}"
    lines += [
        "",
        "## Terms",
        "",
        f"- Permitted uses: {', '.join(facts.purposes)}.",
        f"- Prohibited uses: {'; '.join(PROHIBITED_USES)}.",
        f"- Term: {facts.term[0]:%Y-%m-%d} to {facts.term[1]:%Y-%m-%d}. Pricing: {facts.pricing}.",
        f"- Regions: {regions}. Content window: {start:%Y-%m-%d} to {end:%Y-%m-%d}."
        if start and end
        else f"- Regions: {regions}. Content window: {start or 'any'} to {end or 'now'}.",
        "",
        "## What is not in this data",
        "",
        "Rows are included only when the policy in force and each owner's own settings allow it. Never included: "
        + ", ".join(facts.hard_exclusions)
        + ". A like, repost or bookmark is included only when both the person who made it and the author of the "
        "post it points to allow it.",
        "",
        "Reasons are counted per row; a row withheld for several reasons counts under each"
        + (
            f" (estimated from a deterministic 1-in-{facts.excluded_sample_every} sample)."
            if facts.excluded_sample_every > 1
            else "."
        )
        + (
            " This release was incremental: see the last full release for the counts."
            if not facts.excluded
            else ""
        ),
        "",
        "| reason withheld | rows |",
        "|---|---|",
    ]
    lines += [
        f"| {code} | {count} |"
        for code, count in sorted(facts.excluded.items(), key=lambda kv: -kv[1])
        if count
    ]
    lines += [
        "",
        "## Personal data",
        "",
        "No platform identifier is shared. `user_key` and `post_key` are HMAC-SHA256 pseudonyms under a secret "
        "held by the platform for this agreement only: they cannot be reversed or linked across agreements. Post "
        "text is scrubbed at ingest (e-mail addresses, phone numbers, URLs, IP addresses, card and bank numbers "
        "become typed placeholders such as `<EMAIL>`; mentions become `@user`). Sentiment is VADER's compound score.",
        "",
        *REIDENTIFICATION_RISK,
        "## Revocations",
        "",
        "When a person opts out, deletes a post or an account, or the policy narrows, the rows leave the tables in a "
        "new version: they appear as deletes in the change data feed (keys only) and in the `forget` table. You must "
        f"delete them, and remove their influence from trained models, within {facts.deletion_sla_hours} hours, then "
        "acknowledge. Versions older than the latest revocation cannot be read.",
        "",
    ]
    return "\n".join(lines)
