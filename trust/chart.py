"""Geometry of the Monitor tab's trust chart, rendered server-side as SVG (no Django).

The chart plots the trust score (0–100) over a time range as a step line (the score holds
between changes), on top of the four tier bands of SPEC §5.4, with one marker per change
(its ``<title>`` is the reason, shown on hover) and a strip under the plot coloured by the
applied trust tier. Everything here is numbers in SVG user units; the template only draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

RANGES = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}
RANGE_LABELS = {"7d": "7 days", "30d": "30 days", "90d": "90 days", "1y": "1 year"}
DEFAULT_RANGE = "30d"

WIDTH = 760
HEIGHT = 260
LEFT = 36
RIGHT = 12
TOP = 10
PLOT_HEIGHT = 200
STRIP_Y = TOP + PLOT_HEIGHT + 6
STRIP_HEIGHT = 8
AXIS_Y = STRIP_Y + STRIP_HEIGHT + 14
PLOT_WIDTH = WIDTH - LEFT - RIGHT

# (tier, lowest score, highest score) — SPEC §5.4 thresholds 90 / 75 / 50.
BANDS = ((1, 90, 100), (2, 75, 90), (3, 50, 75), (4, 0, 50))
Y_TICKS = (0, 50, 75, 90, 100)


@dataclass(frozen=True)
class Point:
    at: datetime
    score: Decimal | None
    tier: int | None
    previous_score: Decimal | None
    change_type: str
    label: str
    reason: str


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    title: str
    css: str  # "up" | "down" | "flat"
    change_type: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_width: int = PLOT_WIDTH
    top: int = TOP
    plot_bottom: int = TOP + PLOT_HEIGHT
    strip_y: int = STRIP_Y
    strip_height: int = STRIP_HEIGHT
    axis_y: int = AXIS_Y
    bands: list[dict] = field(default_factory=list)
    y_ticks: list[dict] = field(default_factory=list)
    x_ticks: list[dict] = field(default_factory=list)
    path: str = ""
    markers: list[Marker] = field(default_factory=list)
    strip: list[dict] = field(default_factory=list)
    empty: bool = True
    last_score: Decimal | None = None


def _x(at: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    offset = min(max((at - start).total_seconds(), 0.0), span)
    return round(LEFT + PLOT_WIDTH * offset / span, 1)


def _y(score: Decimal | float) -> float:
    return round(TOP + PLOT_HEIGHT * (100 - float(score)) / 100, 1)


def _title(point: Point) -> str:
    if point.previous_score is not None and point.score is not None:
        delta = point.score - point.previous_score
        move = f"{point.previous_score} → {point.score} ({'+' if delta >= 0 else ''}{delta})"
    else:
        move = f"{point.score}"
    when = point.at.strftime("%Y-%m-%d %H:%M UTC")
    tier = f", tier {point.tier}" if point.tier else ""
    return f"{when} · {point.label}: {move}{tier} — {point.reason}"


def _x_ticks(start: datetime, end: datetime) -> list[dict]:
    days = max(round((end - start).total_seconds() / 86400), 1)
    count = 7 if days <= 7 else 6
    fmt = "%b %d" if days <= 90 else "%b %Y"
    ticks = []
    for index in range(count + 1):
        at = start + timedelta(seconds=(end - start).total_seconds() * index / count)
        anchor = "start" if index == 0 else "end" if index == count else "middle"
        ticks.append({"x": _x(at, start, end), "label": at.strftime(fmt), "anchor": anchor})
    return ticks


def _extend_strip(strip: list[dict], x0: float, x1: float, tier: int | None) -> None:
    """Colour [x0, x1] of the tier strip with ``tier`` (merged with the last piece)."""
    if tier is None or x1 <= x0:
        return
    if strip and strip[-1]["tier"] == tier:
        strip[-1]["width"] = round(x1 - strip[-1]["x"], 1)
    else:
        strip.append({"x": x0, "width": round(x1 - x0, 1), "tier": tier})


def build(
    points: Sequence[Point],
    *,
    start: datetime,
    end: datetime,
    initial: tuple[Decimal | None, int | None] | None = None,
) -> Chart:
    """The chart of ``points`` (changes in time order) between ``start`` and ``end``.

    ``initial`` is the (score, tier) in effect at ``start`` (the last change before it).
    """
    chart = Chart()
    chart.bands = [
        {"tier": tier, "y": _y(high), "height": round(_y(low) - _y(high), 1), "label_y": _y(high)}
        for tier, low, high in BANDS
    ]
    chart.y_ticks = [{"value": value, "y": _y(value)} for value in Y_TICKS]
    chart.x_ticks = _x_ticks(start, end)

    score, tier = initial if initial else (None, None)
    x_prev = float(LEFT)
    segments: list[str] = []
    strip: list[dict] = []
    if score is not None:
        segments.append(f"M{LEFT},{_y(score)}")
    for point in points:
        x = _x(point.at, start, end)
        if point.score is None:
            continue
        if score is None:
            segments.append(f"M{x},{_y(point.score)}")
        else:
            segments.append(f"H{x}V{_y(point.score)}")
        _extend_strip(strip, x_prev, x, tier)
        x_prev = x
        if point.previous_score is None or point.score == point.previous_score:
            css = "flat"
        else:
            css = "up" if point.score > point.previous_score else "down"
        chart.markers.append(
            Marker(
                x=x, y=_y(point.score), title=_title(point), css=css, change_type=point.change_type
            )
        )
        score, tier = point.score, point.tier
    right = float(WIDTH - RIGHT)
    if score is not None:
        segments.append(f"H{right}")
        chart.empty = False
    _extend_strip(strip, x_prev, right, tier)
    chart.path = "".join(segments)
    chart.strip = strip
    chart.last_score = score
    return chart
