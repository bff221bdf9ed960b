"""Console pages of the event log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from console.roles import role_required

from .models import GovernanceEvent
from .services import integration_lag, latest_checkpoint

PAGE = 50


@role_required("read")
def audit_log(request: HttpRequest) -> HttpResponse:
    """Newest first, keyset-paginated on arrival order (``?before=<arrival>``)."""
    events = GovernanceEvent.objects.select_related("log").order_by("-arrival")
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(arrival__lt=int(before))
    page = list(events[: PAGE + 1])
    context = {
        "events": page[:PAGE],
        "next_before": page[PAGE - 1].arrival if len(page) > PAGE else None,
        "checkpoint": latest_checkpoint(),
        "lag": integration_lag(),
    }
    return render(request, "audit/log.html", context)
