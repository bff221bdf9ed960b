"""The one call services make after recording an event that may move trust (SPEC §5.5).

Services call ``event_recorded(event)`` right after ``audit.services.record`` for:
``action.evaluated`` (a violation), ``action.completed`` (canary in an output),
``approval.decided`` / ``approval.expired`` (approval outcome), ``session.ended`` /
``session.halted`` / ``session.revoked`` (alignment), ``assessment.completed``
(re-assessment). The trust app decides whether the event moves trust and, if so,
schedules ``recompute_trust(agent_id, cause_event_id)`` after commit.
"""

from __future__ import annotations


def event_recorded(event) -> None:
    """Schedule a trust recompute after commit if ``event`` moves trust (no-op until the
    trust app installs its tasks)."""
    return None
