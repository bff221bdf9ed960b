"""Websocket hints, sent after commit (SPEC §4 "pushes are hints").

A hint only says *what* changed ("agent 42 changed"); pages then fetch the truth from the
server. Hints never carry authority, and a failed push (Redis down) never fails the request
that made the change: it is logged, and pages re-sync by polling.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger("warden.hints")

FLEET_GROUP = "fleet"


def agent_group(agent_id: Any) -> str:
    return f"agent.{agent_id}"


def send(group: str, message: dict) -> None:
    """Push one hint now (call it from after-commit hooks)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "hint", **message})
    except Exception:  # noqa: BLE001 - hints are best effort by design
        log.warning("could not push hint to %s", group, exc_info=True)


def send_on_commit(group: str, message: dict) -> None:
    transaction.on_commit(lambda: send(group, message), robust=True)


def agent_changed_on_commit(agent_id: Any, *, kind: str = "changed") -> None:
    message = {"topic": "agent", "kind": kind, "agent_id": str(agent_id)}
    send_on_commit(FLEET_GROUP, message)
    send_on_commit(agent_group(agent_id), message)


def session_closed_on_commit(session) -> None:
    send_on_commit(
        agent_group(session.agent_id),
        {
            "topic": "session",
            "kind": session.status,
            "agent_id": str(session.agent_id),
            "session_id": str(session.id),
        },
    )
