"""The Monitor chart's geometry (trust/chart.py, no Django): positions, bands, markers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trust import chart

START = datetime(2031, 3, 1, tzinfo=UTC)
END = START + timedelta(days=30)


def point(days: float, score: str, previous: str | None, tier: int = 3, kind: str = "violation"):
    return chart.Point(
        at=START + timedelta(days=days),
        score=Decimal(score),
        tier=tier,
        previous_score=Decimal(previous) if previous else None,
        change_type=kind,
        label=kind.title(),
        reason=f"because {kind}",
    )


def test_bands_are_the_tier_thresholds():
    result = chart.build([], start=START, end=END)
    bands = {band["tier"]: band for band in result.bands}
    top, bottom = chart.TOP, chart.TOP + chart.PLOT_HEIGHT
    assert bands[1]["y"] == top and bands[4]["y"] + bands[4]["height"] == bottom
    assert bands[2]["y"] == top + chart.PLOT_HEIGHT * 10 / 100  # 90
    assert bands[3]["y"] == top + chart.PLOT_HEIGHT * 25 / 100  # 75
    assert bands[4]["y"] == top + chart.PLOT_HEIGHT * 50 / 100  # 50
    assert result.empty and result.path == ""


def test_a_step_line_with_a_marker_per_change():
    points = [point(0, "73.89", None, kind="reassessment"), point(15, "68.64", "73.89")]
    result = chart.build(points, start=START, end=END)
    assert not result.empty
    middle = chart.LEFT + chart.PLOT_WIDTH / 2
    assert result.path == f"M{chart.LEFT}.0,62.2H{middle}V72.7H{chart.WIDTH - chart.RIGHT}.0"
    first, second = result.markers
    assert (first.css, second.css) == ("flat", "down")
    assert "73.89 → 68.64 (-5.25)" in second.title and "because violation" in second.title
    assert result.last_score == Decimal("68.64")


def test_the_line_starts_from_the_score_in_force_before_the_range():
    result = chart.build(
        [point(10, "80.00", "70.00", tier=2, kind="recovery")],
        start=START,
        end=END,
        initial=(Decimal("70.00"), 3),
    )
    assert result.path.startswith(f"M{chart.LEFT},{chart.TOP + chart.PLOT_HEIGHT * 0.3}")
    assert [piece["tier"] for piece in result.strip] == [3, 2]
    assert result.markers[0].css == "up"


def test_points_outside_the_range_are_clamped_to_its_edges():
    result = chart.build([point(-5, "50.00", "60.00")], start=START, end=END)
    assert result.markers[0].x == chart.LEFT
    assert result.x_ticks[0]["anchor"] == "start" and result.x_ticks[-1]["anchor"] == "end"
