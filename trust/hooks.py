"""The one call services make after recording an event that may move trust (SPEC §5.5).

Services call ``event_recorded(event)`` right after ``audit.services.record`` for:
``action.evaluated`` (a violation), ``action.completed`` (canary in an output),
``approval.decided`` / ``approval.expired`` (approval outcome), ``session.ended`` /
``session.halted`` / ``session.revoked`` (alignment), ``assessment.completed``
(re-assessment). The trust app decides whether the event moves trust and, if so,
schedules ``recompute_trust(agent_id, cause_event_id)`` after commit.

Events that do not move trust by themselves (an allowed action, an approved request) are
not lost: the next recompute of the agent applies every event it has not applied yet, in
log order.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from . import reducer

log = logging.getLogger("warden.trust")


def moves_trust(event_type: str, result: str | None, payload: dict[str, Any]) -> bool:
    """Whether an event changes an agent's trust by itself."""
    if event_type in ("action.evaluated", "action.completed"):
        return bool(payload.get("violation"))
    if event_type == "approval.decided":
        return payload.get("kind", "action") == "action" and result == "rejected"
    if event_type == "approval.expired":
        return payload.get("kind", "action") == "action"
    return event_type == "assessment.completed" or event_type in reducer.SESSION_END_TYPES


def event_recorded(event) -> None:
    """Schedule a trust recompute after commit if ``event`` moves trust."""
    if event.agent_id is None or not moves_trust(event.event_type, event.result, event.payload):
        return
    agent_id, event_id = str(event.agent_id), str(event.id)
    # robust: the change is committed; a failed hand-off is logged and the periodic pass
    # (advance_trust_clock) picks the event up.
    transaction.on_commit(lambda: _schedule(agent_id, event_id), robust=True)


def _schedule(agent_id: str, event_id: str) -> None:
    from .tasks import recompute_trust

    recompute_trust.delay(agent_id, event_id)
