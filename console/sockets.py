"""What a hint socket does when its channel layer breaks under it.

A socket's hints come through the channel layer (Redis in production). When Redis restarts,
a pooled connection goes stale and the layer's ``receive`` raises; unguarded, that error
escapes Channels' dispatch loop and the socket dies without a close frame. Worse, Redis
comes back without the socket's group memberships, so even a socket that survived would be
deaf. Either way the page must reconnect (and re-fetch, which its script does on open), so
a broken layer closes the socket with 1011 and the cause in the log.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from .hints import operator_group
from .roles import roles_of

logger = logging.getLogger(__name__)

LAYER_LOST = "layer.lost"
CLOSE_LAYER_LOST = 1011  # RFC 6455 "internal error": the page reconnects
CLOSE_NOT_ALLOWED = 4403  # as a refused connect (a reconnect is refused too)


class ClosesWhenLayerBreaks:
    """Mixin for ``AsyncJsonWebsocketConsumer``s whose hints come through the layer: the
    sockets are one-way (hints out, pings answered) and leave their groups on disconnect.

    Channels assigns ``channel_receive`` in ``__call__``; the setter wraps it so that a
    failing receive becomes one ``layer.lost`` message, after which it never returns (the
    dispatch loop cancels it when the socket stops).
    """

    groups_joined: list[str]
    _layer_lost = False

    @property
    def channel_receive(self):
        return self._guarded_receive

    @channel_receive.setter
    def channel_receive(self, receive):
        async def guarded():
            if not self._layer_lost:
                try:
                    return await receive()
                except Exception:  # any failure leaves the socket deaf: it must reconnect
                    logger.exception("channel layer receive failed; closing the socket")
                    self._layer_lost = True
                    return {"type": LAYER_LOST}
            await asyncio.Event().wait()

        self._guarded_receive = guarded

    async def layer_lost(self, message):
        await self.close(code=CLOSE_LAYER_LOST)

    def allows(self, user) -> bool:
        """Whether ``user`` (read afresh) may keep this socket: an active operator with a
        role. Consumers that need more override it."""
        return bool(roles_of(user))

    async def join_operator_group(self, user) -> None:
        """Join the operator's own group (call from ``connect``, before accepting)."""
        group = operator_group(user.pk)
        self.groups_joined.append(group)
        await self.channel_layer.group_add(group, self.channel_name)

    async def operator_changed(self, message):
        """The operator was deactivated or their roles changed: close the socket with 4403
        if they may no longer hold it (the page's fetches are refused anyway)."""
        if not await database_sync_to_async(self._still_allowed)():
            await self.close(code=CLOSE_NOT_ALLOWED)

    def _still_allowed(self) -> bool:
        user = get_user_model().objects.filter(pk=self.scope["user"].pk).first()
        return user is not None and self.allows(user)

    async def disconnect(self, code):
        await self.leave_groups()

    async def receive_json(self, content, **kwargs):
        # The socket is one-way (server → page); pings keep proxies from closing it.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def leave_groups(self):
        """Discard the socket's groups; a layer that is down loses them anyway."""
        for group in getattr(self, "groups_joined", []):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.warning("could not leave group %s; the layer is unreachable", group)
                return
