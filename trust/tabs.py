"""The agent page's Monitor tab (SPEC §5.5, §8): trust over time, components, history."""

from __future__ import annotations

from django.utils import timezone

from console.roles import can

from . import chart, selectors

PAGE = 25


def monitor(request, agent) -> tuple[str, dict]:
    range_key = request.GET.get("range", chart.DEFAULT_RANGE)
    if range_key not in chart.RANGES:
        range_key = chart.DEFAULT_RANGE
    try:
        before = int(request.GET.get("before", "")) or None
    except ValueError:
        before = None
    rows = selectors.history(agent, before=before, limit=PAGE + 1)
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    return "trust/monitor.html", {
        "chart": selectors.chart_for(agent, range_key, timezone.now()),
        "range_key": range_key,
        "range_label": chart.RANGE_LABELS[range_key],
        "ranges": list(chart.RANGE_LABELS.items()),
        "components": selectors.components(agent),
        "history_rows": rows[:PAGE],
        "older": older,
        "paged": before is not None,
        "agent_alerts": selectors.open_alerts(agent, limit=5),
        "can_recalculate": can(request.user, "recalculate_trust"),
        "can_acknowledge": can(request.user, "contain"),
    }
