"""The agent page's Assess tab (SPEC §8): the current profile and every version with its diff."""

from __future__ import annotations

from console.roles import can

from . import scoring, selectors


def assess(request, agent) -> tuple[str, dict]:
    versions = selectors.versions(agent)
    history = [
        {
            "assessment": assessment,
            "changes": assessment.changes(),
            "previous": assessment.previous,
        }
        for assessment in versions
    ]
    return "assessments/tab.html", {
        "history": history,
        "current": versions[0] if versions else None,
        "can_assess": can(request.user, "assess") and agent.status != agent.Status.REVOKED,
        "tier_meanings": scoring.TIER_MEANINGS,
    }
