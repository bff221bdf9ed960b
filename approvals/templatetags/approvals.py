"""Template helpers of the approval queue: the dashboard panel and small formatters."""

from __future__ import annotations

from django import template

from approvals import selectors

register = template.Library()


@register.inclusion_tag("approvals/_dashboard.html")
def approvals_panel() -> dict:
    """The dashboard's pending approvals and queue-load chart (one include, own data)."""
    return {"summary": selectors.dashboard_summary()}


@register.filter
def duration(seconds) -> str:
    """``3725`` → ``1h 02m``; ``75`` → ``1m 15s``."""
    if seconds is None:
        return "–"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
