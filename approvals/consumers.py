"""The approval queue's websocket (SPEC §4 live queue): reviewers only.

``/ws/approvals/`` joins the queue group (a hint for every request opened, voted on,
decided, expired or cancelled) and the fleet group (agent hints, so Pause / Revoke buttons
on the cards stay true). Anonymous sockets are closed with 4401, operators without the
``decide`` permission with 4403 (an ``access.denied`` event, as any refusal, SPEC §8). The
socket is one-way: hints out, pings answered; a hint only says what to re-fetch.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import transaction

from audit.services import record
from console import hints
from console.roles import actor_for, can
from console.sockets import ClosesWhenLayerBreaks

from .hints import QUEUE_GROUP

PERMISSION = "decide"


def _may_decide(user) -> bool:
    return can(user, PERMISSION)


def _record_refusal(user, path: str) -> None:
    with transaction.atomic():
        record(
            "access.denied",
            actor=actor_for(user),
            result="denied",
            reason=f"needs permission {PERMISSION!r}",
            payload={"method": "WEBSOCKET", "path": path[:500], "permission": PERMISSION},
        )


class QueueConsumer(ClosesWhenLayerBreaks, AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self):
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await database_sync_to_async(_may_decide)(user):
            await database_sync_to_async(_record_refusal)(user, self.scope.get("path", ""))
            await self.close(code=4403)
            return
        hints.bind_loop()
        self.groups_joined = [QUEUE_GROUP, hints.FLEET_GROUP]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.join_operator_group(user)
        await self.accept()

    def allows(self, user) -> bool:
        return _may_decide(user)

    async def hint(self, event):
        message = {k: v for k, v in event.items() if k != "type"}
        # The fleet's "approval count changed" duplicates the queue hint this socket gets.
        if message.get("topic") == "approval" and message.get("kind") == "count":
            return
        await self.send_json({"type": "hint", **message})
