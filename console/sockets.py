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

logger = logging.getLogger(__name__)

LAYER_LOST = "layer.lost"
CLOSE_LAYER_LOST = 1011  # RFC 6455 "internal error": the page reconnects


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
