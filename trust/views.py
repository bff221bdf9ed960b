"""Console pages of the trust app: Recalculate, acknowledging alerts, the dashboard part.

The Monitor tab itself is ``trust.tabs.monitor`` (shown by the agent page).
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from console.errors import WardenError
from console.models import Agent
from console.roles import role_required

from . import selectors, services
from .models import Alert


def _object(model, pk, what: str):
    try:
        return get_object_or_404(model, pk=uuid.UUID(str(pk)))
    except ValueError as exc:
        raise Http404(f"No such {what}") from exc


def _next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return fallback


@role_required("recalculate_trust")
@require_POST
def recalculate(request: HttpRequest, agent_id) -> HttpResponse:
    agent = _object(Agent, agent_id, "agent")
    try:
        row = services.recalculate_trust(agent, by=request.user, reason=request.POST.get("reason"))
    except WardenError as exc:
        messages.error(request, exc.message)
    else:
        outcome = (
            "matched the incremental result"
            if row.previous_score == row.new_score and row.previous_tier == row.new_tier
            else f"corrected {row.previous_score} → {row.new_score}"
        )
        messages.success(
            request, f"{agent.name}: trust recalculated from the event log — {outcome}."
        )
    return redirect("agent-tab", agent_id=agent.id, tab="monitor")


@role_required("contain")
@require_POST
def acknowledge(request: HttpRequest, alert_id) -> HttpResponse:
    alert = _object(Alert, alert_id, "alert")
    try:
        services.acknowledge_alert(alert, by=request.user, note=request.POST.get("note", ""))
    except WardenError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Alert for {alert.agent.name} acknowledged.")
    return redirect(_next(request, reverse("dashboard")))


@role_required("read")
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """The dashboard's trust part on its own (re-fetched by HTMX on agent hints)."""
    return render(request, "trust/_dashboard.html#trust-overview", selectors.dashboard_context())
