"""The agent page's Verify tab (SPEC §8): its sessions with replay and proof links, the
incident timeline, and how to check a proof offline."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .services import latest_checkpoint

SESSIONS = 50


def verify(request, agent) -> tuple[str, dict]:
    sessions = list(agent.sessions.order_by("-started_at")[: SESSIONS + 1])
    now = timezone.now()
    first = agent.sessions.order_by("started_at").values_list("started_at", flat=True).first()
    window_start = min(first, now - timedelta(hours=72)) if first else now - timedelta(hours=72)
    return "audit/tab_verify.html", {
        "sessions": sessions[:SESSIONS],
        "more_sessions": len(sessions) > SESSIONS,
        "checkpoint": latest_checkpoint(),
        "incident_from": (now - timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M"),
        "incident_all_from": window_start.strftime("%Y-%m-%dT%H:%M"),
    }
