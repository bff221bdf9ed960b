"""Websocket hints of the approval queue, sent after commit (SPEC §4 "pushes are hints").

Three audiences, one message each time a request changes:

* ``approval.<id>``: the agent's long-poll on that one request wakes and re-reads it;
* ``approvals``: reviewers' open queue pages re-fetch their cards;
* ``fleet``: every console page re-fetches the pending-count badge (``kind: "count"``).

A hint names what changed and never carries authority: pages and long-polls read the truth
from the database.
"""

from __future__ import annotations

from typing import Any

from console import hints

QUEUE_GROUP = "approvals"


def request_group(approval_id: Any) -> str:
    return f"approval.{approval_id}"


def changed_on_commit(request, kind: str) -> None:
    message = {
        "topic": "approval",
        "kind": kind,
        "approval_id": str(request.id),
        "agent_id": str(request.agent_id),
        "status": request.status,
    }
    hints.send_on_commit(request_group(request.id), message)
    hints.send_on_commit(QUEUE_GROUP, message)
    hints.send_on_commit(hints.FLEET_GROUP, {"topic": "approval", "kind": "count"})
