"""The public transparency report's numbers and charts (pure, issue 18): people per region (on the
platform, included in some partner's release, opted out), revocations and their delivery latency
(p50/p95), acknowledgements on time / late / overdue / pending, and SVG bar charts of them."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from datalease.revocation.model import ForgetEntry


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 (median) and p95 (nearest rank) of `values`, None when there are none."""
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(float(statistics.median(ordered)), 3), "p95": round(float(p95), 3)}


def revocations(entries: Sequence[ForgetEntry]) -> dict[str, Any]:
    """Forget entries delivered (one per subject and agreement) and request → delivery latency."""
    latency = [(e.delivered_at - e.requested_at).total_seconds() for e in entries]
    by_reason: dict[str, int] = {}
    for entry in entries:
        by_reason[entry.reason_code] = by_reason.get(entry.reason_code, 0) + 1
    return {
        "delivered": len(entries),
        "rows_withdrawn": sum(e.rows for e in entries),
        "by_reason": dict(sorted(by_reason.items())),
        "delivery_latency_s": percentiles(latency),
    }


def acknowledgements(entries: Sequence[ForgetEntry], now: datetime) -> dict[str, int]:
    counts = {"on_time": 0, "late": 0, "overdue": 0, "pending": 0}
    for entry in entries:
        if entry.acked_at is not None:
            counts["on_time" if entry.acked_at <= entry.deadline else "late"] += 1
        else:
            counts["overdue" if now > entry.deadline else "pending"] += 1
    return counts


def people_by_region(
    regions: Mapping[int, str], included: set[int], opted_out: set[int]
) -> dict[str, dict[str, int]]:
    """region -> users, included (in some release of the period), opted_out (master toggle off)."""
    out: dict[str, dict[str, int]] = {}
    for user, region in regions.items():
        row = out.setdefault(region, {"users": 0, "included": 0, "opted_out": 0})
        row["users"] += 1
        row["included"] += user in included
        row["opted_out"] += user in opted_out
    return dict(sorted(out.items()))


COLOURS = ("#3b6ea5", "#4a9c5d", "#c0504d", "#8a6bb0")


def bar_chart(title: str, groups: Mapping[str, Mapping[str, int]], series: Sequence[str]) -> str:
    """A grouped bar chart as inline SVG: one group per key of `groups`, one bar per series."""
    width, height, left, bottom, top = 640, 260, 48, 40, 28
    peak = max([1, *(int(v.get(s, 0)) for v in groups.values() for s in series)])
    names = list(groups)
    slot = (width - left - 10) / max(1, len(names))
    bar = max(4.0, slot / (len(series) + 1))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#555"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="10" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" font-size="10" text-anchor="end">0</text>',
    ]
    plot = height - bottom - top
    for g, name in enumerate(names):
        x0 = left + g * slot + bar / 2
        for s, key in enumerate(series):
            value = int(groups[name].get(key, 0))
            h = plot * value / peak
            x = x0 + s * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[s % len(COLOURS)]}" data-series="{escape(key)}" data-group="{escape(name)}" '
                f'data-value="{value}"><title>{escape(name)} · {escape(key)}: {value}</title></rect>'
            )
        parts.append(
            f'<text x="{x0 + bar * len(series) / 2:.1f}" y="{height - bottom + 14}" font-size="11" '
            f'text-anchor="middle">{escape("other" if name == "*" else name)}</text>'
        )
    for s, key in enumerate(series):
        parts.append(
            f'<rect x="{left + s * 120}" y="{height - 14}" width="10" height="10" fill="{COLOURS[s % len(COLOURS)]}"/>'
            f'<text x="{left + s * 120 + 14}" y="{height - 5}" font-size="11">{escape(key.replace("_", " "))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
