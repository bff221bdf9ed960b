"""The console's live websocket: fleet and agent hints for open pages (SPEC §8).

Operators only (``AuthMiddlewareStack`` session; anonymous sockets are closed). The page
subscribes to the fleet and, optionally, to one agent; every hint tells it what to re-fetch.
"""

from __future__ import annotations

import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import hints
from .hints import FLEET_GROUP, agent_group
from .roles import roles_of
from .sockets import ClosesWhenLayerBreaks


class LiveConsumer(ClosesWhenLayerBreaks, AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await database_sync_to_async(roles_of)(user):
            await self.close(code=4403)
            return
        self.groups_joined = [FLEET_GROUP]
        agent = self._query_param("agent")
        if agent:
            try:
                self.groups_joined.append(agent_group(uuid.UUID(agent)))
            except ValueError:
                await self.close(code=4400)
                return
        hints.bind_loop()
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.join_operator_group(user)
        await self.accept()

    def _query_param(self, name: str) -> str:
        from urllib.parse import parse_qs

        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        values = query.get(name) or [""]
        return values[0]

    async def hint(self, event):
        message = {k: v for k, v in event.items() if k != "type"}
        await self.send_json({"type": "hint", **message})
        if message.get("topic") == "agent" and message.get("kind") == "revoked":
            # SPEC §1: subscriptions to a revoked agent are told, then closed.
            group = agent_group(message.get("agent_id"))
            if group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.remove(group)
