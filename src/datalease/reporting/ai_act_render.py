"""The AI Act training-content summary as JSON and as Markdown (every number with its release ids)."""

from __future__ import annotations

from typing import Any

from datalease.reporting.ai_act import Number, Summary

PII_HANDLING = (
    "No platform identifier is shared: people and posts appear under HMAC-SHA256 pseudonyms keyed per "
    "agreement. Post text is scrubbed at ingest (e-mail addresses, phone numbers, URLs, IP addresses, card "
    "and bank numbers become typed placeholders; mentions become @user). Minors, accounts of unknown age, "
    "protected, suspended, deactivated and deleted accounts, deleted and non-public content are never "
    "included. Pseudonymous keys are not anonymity: the licence prohibits re-identification."
)
OPT_OUTS = (
    "Every release applies the policy in force and each person's own settings (opt-out or opt-in per region, "
    "per category, per purpose, per partner and per post). A later opt-out, deletion or narrower policy "
    "withdraws the rows in a new version within seconds and lists them in the partner's forget table, to be "
    "deleted from data and models within the agreement's deletion SLA."
)


def _n(number: Number) -> str:
    ids = ", ".join(str(i) for i in number.release_ids) or "none"
    return f"{number.value:,} (releases {ids})"


def summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "template": "EU AI Act Art. 53(1)(d) public summary of training content — data licensed from this platform",
        "source": {"platform": summary.platform, "kind": "licensed data from an online platform"},
        "partner": summary.partner,
        "period": {
            "label": summary.period.label,
            "start": summary.period.start.isoformat(),
            "end": summary.period.end.isoformat(),
        },
        "release_ids": summary.release_ids,
        "agreements": [
            {
                "agreement": a.agreement_id,
                "purposes": a.purposes,
                "categories": a.categories,
                "fields": a.fields,
                "regions": {"allowed": a.regions_allowed, "denied": a.regions_denied},
                "content_window": {"from": a.content_window[0], "until": a.content_window[1]},
                "data_as_of": {"first": a.data_as_of[0], "last": a.data_as_of[1]} if a.data_as_of else None,
                "releases": a.releases,
                "volumes": {
                    v.category: {
                        "rows_at_end": v.rows_at_end.to_dict(),
                        "rows_added": v.rows_added.to_dict(),
                        "rows_removed": v.rows_removed.to_dict(),
                    }
                    for v in a.volumes
                },
                "opt_outs_and_reservations": {
                    "how": OPT_OUTS,
                    "rows_withheld_by_reason": {k: v.to_dict() for k, v in a.withheld_by_reason.items()},
                    "forget_entries_by_reason": {k: v.to_dict() for k, v in a.forget_by_reason.items()},
                    "rows_withdrawn": a.forget_rows.to_dict(),
                },
                "rights": a.rights,
            }
            for a in summary.agreements
        ],
        "personal_data_handling": PII_HANDLING,
    }


def summary_markdown(summary: Summary) -> str:
    p = summary.period
    lines = [
        f"# Training content summary — data licensed from {summary.platform}",
        "",
        f"Partner **{summary.partner}**, period **{p.label}** ({p.start:%Y-%m-%d} to {p.end:%Y-%m-%d}, exclusive). "
        "The part of the public summary (EU AI Act Art. 53(1)(d)) about data licensed from this platform. Every "
        "number names the releases it is computed from (`datalease release show ID`).",
        "",
    ]
    if not summary.agreements:
        lines += ["No release was built for this partner in the period.", ""]
    for a in summary.agreements:
        regions = "every region" if a.regions_allowed is None else ", ".join(a.regions_allowed)
        if a.regions_denied:
            regions += f" except {', '.join(a.regions_denied)}"
        lines += [
            f"## Agreement {a.agreement_id}",
            "",
            "- Source: public posts and interactions of the platform's users, licensed under this agreement.",
            f"- Purposes: {', '.join(a.purposes)}.",
            f"- Categories: {', '.join(a.categories)}.",
            f"- Regions: {regions}.",
            f"- Content window: {a.content_window[0] or 'any'} to {a.content_window[1] or 'now'}; data as of "
            f"{a.data_as_of[0] if a.data_as_of else '-'} to {a.data_as_of[1] if a.data_as_of else '-'}.",
            f"- Releases in the period: {', '.join(str(r) for r in a.releases)}.",
            "- Rights (posts table, CAWG training-and-data-mining): "
            + ", ".join(f"{k} {v}" for k, v in a.rights.items())
            + ".",
            "",
            "| category | rows held at the end | rows added | rows removed |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {v.category} | {_n(v.rows_at_end)} | {_n(v.rows_added)} | {_n(v.rows_removed)} |"
            for v in a.volumes
        ]
        lines += ["", "### How opt-outs and reservations were honoured", "", OPT_OUTS, ""]
        if a.withheld_by_reason:
            lines += ["| withheld at the last full build, by reason | rows |", "|---|---|"]
            lines += [f"| {code} | {_n(n)} |" for code, n in a.withheld_by_reason.items()]
            lines.append("")
        if a.forget_by_reason:
            lines += ["| forget entries delivered, by reason | entries |", "|---|---|"]
            lines += [f"| {code} | {_n(n)} |" for code, n in a.forget_by_reason.items()]
            lines.append("")
        lines += [f"Rows withdrawn by those entries: {_n(a.forget_rows)}.", ""]
    lines += ["## Personal data", "", PII_HANDLING, ""]
    return "\n".join(lines)
