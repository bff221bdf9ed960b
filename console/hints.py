"""Websocket hints, sent after commit (SPEC §4 "pushes are hints").

A hint only says *what* changed ("agent 42 changed"); pages then fetch the truth from the
server. Hints never carry authority, and a failed push (Redis down) never fails the request
that made the change: it is logged, and pages re-sync by polling.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

log = logging.getLogger("warden.hints")

FLEET_GROUP = "fleet"

# The event loop that serves this process's websockets and long-polls. The in-memory layer
# (embedded mode) keeps plain asyncio queues, which only that loop may touch: a hint sent
# from another thread (a periodic job, a test) is handed to it rather than pushed from a
# loop of its own, which would not wake the waiting consumer.
_home_loop: asyncio.AbstractEventLoop | None = None


def bind_loop() -> None:
    """Called by consumers and long-polls from the loop that awaits the layer's queues."""
    global _home_loop
    _home_loop = asyncio.get_running_loop()


def agent_group(agent_id: Any) -> str:
    return f"agent.{agent_id}"


def operator_group(user_id: Any) -> str:
    """Every hint socket of one operator (closed when they lose the right to it)."""
    return f"operator.{user_id}"


def send(group: str, message: dict, *, handler: str = "hint") -> None:
    """Push one hint now (call it from after-commit hooks); ``handler`` names the
    consumer method that receives it."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {**message, "type": handler}
    try:
        loop = _home_loop
        if (
            isinstance(layer, InMemoryChannelLayer)
            and loop is not None
            and loop.is_running()
            and _running_loop() is not loop
        ):
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(5)
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - hints are best effort by design
        log.warning("could not push hint to %s", group, exc_info=True)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def send_on_commit(group: str, message: dict) -> None:
    transaction.on_commit(lambda: send(group, message), robust=True)


def operator_changed_on_commit(user_id: Any) -> None:
    """The operator's roles or status changed: each of their sockets re-checks its right."""
    transaction.on_commit(
        lambda: send(operator_group(user_id), {}, handler="operator.changed"), robust=True
    )


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
