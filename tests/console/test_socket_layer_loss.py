"""Hint sockets whose channel layer breaks (Redis restarted under them) close with 1011.

The failure seen in the Redis outage fault test: a pooled connection gone stale after the
restart made the layer's ``receive`` raise inside Channels' dispatch loop, and the socket
died without a close frame. Here the layer fails on purpose, after one hint got through.
"""

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import override_settings

from approvals.consumers import QueueConsumer
from console.consumers import LiveConsumer
from console.hints import FLEET_GROUP
from console.sockets import CLOSE_LAYER_LOST

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CONSUMERS = [
    pytest.param(LiveConsumer, "/ws/live/", "viewer", id="live"),
    pytest.param(QueueConsumer, "/ws/approvals/", "reviewer", id="queue"),
]


class LayerDown(ConnectionError):
    """What channels_redis raises on a stale connection ("Connection closed by server")."""


@pytest.fixture(autouse=True)
def _fresh_layer():
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(10)


def _fail_after(layer, method: str, successes: int) -> list[int]:
    """Make ``layer.<method>`` work ``successes`` times, then raise; returns a call count."""
    original = getattr(layer, method)
    calls = [0]

    async def flaky(*args, **kwargs):
        calls[0] += 1
        if calls[0] > successes:
            raise LayerDown("Connection closed by server.")
        return await original(*args, **kwargs)

    setattr(layer, method, flaky)
    return calls


async def _connected(consumer, path, role, make_operator):
    user = await sync_to_async(make_operator)(role, username=f"layer-{role}")
    communicator = WebsocketCommunicator(consumer.as_asgi(), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.mark.parametrize("consumer,path,role", CONSUMERS)
async def test_a_failing_layer_closes_the_socket_with_1011(consumer, path, role, make_operator):
    layer = get_channel_layer()
    calls = _fail_after(layer, "receive", successes=1)
    communicator = await _connected(consumer, path, role, make_operator)

    await layer.group_send(FLEET_GROUP, {"type": "hint", "topic": "agent", "kind": "paused"})
    hint = await communicator.receive_json_from(timeout=5)
    assert hint["kind"] == "paused"  # the layer worked until now

    closing = await communicator.receive_output(timeout=5)  # the next receive raises
    assert closing == {"type": "websocket.close", "code": CLOSE_LAYER_LOST}
    assert calls[0] == 2  # the guard does not keep calling a broken layer
    await communicator.disconnect()


@pytest.mark.parametrize("consumer,path,role", CONSUMERS)
async def test_leaving_groups_on_a_dead_layer_does_not_raise(consumer, path, role, make_operator):
    layer = get_channel_layer()
    communicator = await _connected(consumer, path, role, make_operator)
    _fail_after(layer, "group_discard", successes=0)
    await communicator.disconnect()  # raises if disconnect lets the layer's error out
    await communicator.wait(timeout=5)
