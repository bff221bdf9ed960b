"""Geometry of the small verdict charts on the Authorize pages (SPEC §8 "verdict mix").

Pure arithmetic, no Django: the templates draw server-side SVG from these numbers (no
inline styles, no JavaScript), so the charts work under the strict CSP and without a build.

* :func:`verdict_bars` — one horizontal bar per verdict (backtest counts, the verdict mix),
  widths relative to the largest count;
* :func:`daily_columns` — one stacked column per day (the agent's recent actions), heights
  relative to the busiest day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Display order: what the operator worries about first is read last, at the bottom of
# the stack and the end of the list.
VERDICT_ORDER = ("ALLOW", "REQUIRE_APPROVAL", "BLOCK", "HALT")
VERDICT_LABELS = {
    "ALLOW": "Allow",
    "REQUIRE_APPROVAL": "Require approval",
    "BLOCK": "Block",
    "HALT": "Halt",
}


def slug(verdict: str) -> str:
    """``REQUIRE_APPROVAL`` → ``require-approval`` (CSS class names of the charts)."""
    return verdict.lower().replace("_", "-")


@dataclass(frozen=True)
class Bar:
    verdict: str
    label: str
    count: int
    width: float  # 0..100, of the chart's width
    percent: float  # share of the total, 0..100

    @property
    def slug(self) -> str:
        return slug(self.verdict)


def verdict_bars(counts: Mapping[str, int], *, order: Iterable[str] = VERDICT_ORDER) -> list[Bar]:
    """One bar per verdict in ``order``; a verdict missing from ``counts`` has a zero bar.

    The longest bar fills the chart; a non-zero count never draws narrower than 1 so it
    stays visible next to a large one.
    """
    values = [(verdict, max(0, int(counts.get(verdict, 0) or 0))) for verdict in order]
    total = sum(count for _, count in values)
    biggest = max((count for _, count in values), default=0)
    bars = []
    for verdict, count in values:
        width = 0.0 if biggest == 0 else max(1.0, round(100.0 * count / biggest, 2))
        if count == 0:
            width = 0.0
        percent = 0.0 if total == 0 else round(100.0 * count / total, 1)
        bars.append(Bar(verdict, VERDICT_LABELS.get(verdict, verdict), count, width, percent))
    return bars


@dataclass(frozen=True)
class Segment:
    verdict: str
    count: int
    y: float
    height: float

    @property
    def slug(self) -> str:
        return slug(self.verdict)


@dataclass(frozen=True)
class Column:
    day: dt.date
    x: float
    width: float
    total: int
    segments: tuple[Segment, ...]


def daily_columns(
    rows: Iterable[tuple[dt.date, str, int]],
    *,
    last_day: dt.date,
    days: int = 14,
    width: float = 280.0,
    height: float = 80.0,
    gap: float = 2.0,
    order: Iterable[str] = VERDICT_ORDER,
) -> list[Column]:
    """Stacked columns for the ``days`` days ending with ``last_day`` (oldest first).

    ``rows`` are ``(day, verdict, count)``; rows outside the range are ignored. Each column
    stacks its verdicts in ``order`` from the bottom; the busiest day is ``height`` tall.
    """
    order = tuple(order)
    first_day = last_day - dt.timedelta(days=days - 1)
    per_day: dict[dt.date, dict[str, int]] = {
        first_day + dt.timedelta(days=i): {} for i in range(days)
    }
    for day, verdict, count in rows:
        if day in per_day and count > 0:
            per_day[day][verdict] = per_day[day].get(verdict, 0) + int(count)
    busiest = max((sum(c.values()) for c in per_day.values()), default=0)
    slot = width / days
    columns = []
    for index, (day, counts) in enumerate(sorted(per_day.items())):
        total = sum(counts.values())
        segments = []
        bottom = height
        for verdict in order + tuple(v for v in counts if v not in order):
            count = counts.get(verdict, 0)
            if not count:
                continue
            segment_height = height * count / busiest
            bottom -= segment_height
            segments.append(Segment(verdict, count, round(bottom, 2), round(segment_height, 2)))
        columns.append(
            Column(
                day=day,
                x=round(index * slot + gap / 2, 2),
                width=round(max(slot - gap, 1.0), 2),
                total=total,
                segments=tuple(segments),
            )
        )
    return columns
