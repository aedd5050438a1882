"""Server-rendered SVG bar charts for the operator's Billing tab: geometry only (the template draws).

A chart is groups (months, runs, buckets) of bars (one per series: partner, currency); heights are
scaled to the largest value. No JavaScript, no charting library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

HEIGHT: Final = 180
GROUP_WIDTH: Final = 90
LEFT: Final = 40


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    w: int
    h: int
    series: int
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    groups: tuple[str, ...]
    series: tuple[str, ...]
    bars: tuple[Bar, ...]
    width: int
    height: int
    maximum: str


def bar_chart(
    title: str, groups: Sequence[str], values: Mapping[str, Mapping[str, Decimal | int]], unit: str = ""
) -> Chart:
    """`values`: series name → group → value (missing = 0). Negative values are drawn as 0."""
    series = tuple(sorted(values))
    top = max((Decimal(v) for s in values.values() for v in s.values()), default=Decimal(0))
    bars = []
    inner = (GROUP_WIDTH - 20) // max(1, len(series))
    for g, group in enumerate(groups):
        for s, name in enumerate(series):
            value = Decimal(values[name].get(group, 0))
            h = int(HEIGHT * max(value, Decimal(0)) / top) if top > 0 else 0
            bars.append(
                Bar(
                    LEFT + g * GROUP_WIDTH + s * inner,
                    10 + HEIGHT - h,
                    max(inner - 2, 2),
                    h,
                    s,
                    f"{name}, {group}: {value}{(' ' + unit) if unit else ''}",
                )
            )
    return Chart(
        title,
        tuple(groups),
        series,
        tuple(bars),
        LEFT + len(groups) * GROUP_WIDTH + 20,
        HEIGHT + 40,
        str(top),
    )
