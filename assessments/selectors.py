"""Reads of assessment versions shared by the wizard, the Assess tab and the API."""

from __future__ import annotations

from console.models import Agent

from .models import RiskAssessment


def versions(agent: Agent) -> list[RiskAssessment]:
    """Every version of ``agent``'s assessment, newest first, with its predecessor loaded."""
    return list(
        RiskAssessment.objects.filter(agent=agent)
        .select_related("assessed_by", "previous")
        .order_by("-version")
    )


def latest(agent: Agent) -> RiskAssessment | None:
    return (
        RiskAssessment.objects.filter(agent=agent)
        .select_related("assessed_by")
        .order_by("-version")
        .first()
    )
