"""Template helpers of the Authorize pages: links to recorded events, windows, badges."""

from __future__ import annotations

import json

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from console.authorize.layers.rules import window_text

register = template.Library()

# The event detail page, when the audit app provides one; else the audit log filtered to
# the event (SPEC §7: "a row opens the full event").
EVENT_URL_NAMES = ("audit-event", "event-detail")


@register.filter
def event_url(event_id) -> str:
    if not event_id:
        return ""
    for name in EVENT_URL_NAMES:
        try:
            return reverse(name, args=[event_id])
        except NoReverseMatch:
            continue
    return f"{reverse('audit-log')}?{urlencode({'event': str(event_id)})}"


@register.filter
def window(seconds) -> str:
    return window_text(seconds)


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def verdict_class(verdict) -> str:
    """CSS class of a verdict badge (``verdict-allow`` …)."""
    return "verdict-" + str(verdict or "none").lower().replace("_", "-")
