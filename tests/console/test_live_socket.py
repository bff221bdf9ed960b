"""The console's live websocket: operators only, same origin only, hints after commit."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from console import services
from console.asgi import application
from console.consumers import LiveConsumer

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_anonymous_sockets_are_closed():
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = AnonymousUser()
    connected, code = await communicator.connect()
    assert not connected and code == 4401


async def test_foreign_origins_are_refused_by_the_application():
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_same_origin_without_a_session_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_operator_receives_a_hint_when_an_agent_is_paused(make_operator, make_agent):
    user = await sync_to_async(make_operator)("oncall", username="live-ona")
    agent = await sync_to_async(make_agent)("watched")
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), f"/ws/live/?agent={agent.id}")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    await sync_to_async(services.pause_agent)(agent, by=user, reason="watch this")
    hints = [
        await communicator.receive_json_from(timeout=5) for _ in range(2)
    ]  # fleet + agent group
    assert {h["agent_id"] for h in hints} == {str(agent.id)}
    assert all(h["type"] == "hint" and h["topic"] == "agent" for h in hints)
    await communicator.disconnect()


async def test_revocation_is_told_then_the_agent_subscription_ends(make_operator, make_agent):
    user = await sync_to_async(make_operator)("oncall", username="live-onb")
    agent = await sync_to_async(make_agent)("doomed-live")
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), f"/ws/live/?agent={agent.id}")
    communicator.scope["user"] = user
    await communicator.connect()
    await sync_to_async(services.revoke_agent)(agent, by=user, reason="rogue")
    kinds = {(await communicator.receive_json_from(timeout=5))["kind"] for _ in range(2)}
    assert kinds == {"revoked"}
    # No longer subscribed to the agent: a later hint to its group does not arrive.
    from channels.layers import get_channel_layer

    from console.hints import agent_group

    await get_channel_layer().group_send(
        agent_group(agent.id), {"type": "hint", "topic": "agent", "kind": "x"}
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_bad_agent_parameter_is_refused(make_operator):
    user = await sync_to_async(make_operator)("viewer", username="live-v")
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/?agent=nope")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    assert not connected and code == 4400


async def test_a_deactivated_operators_sockets_are_closed(make_operator, admin_user):
    from approvals.consumers import QueueConsumer

    user = await sync_to_async(make_operator)("reviewer", username="live-leaver")
    live = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    queue = WebsocketCommunicator(QueueConsumer.as_asgi(), "/ws/approvals/")
    for communicator in (live, queue):
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert connected

    # Losing "decide" closes the queue's socket; the live socket only needs a role.
    await sync_to_async(services.set_operator_roles)(
        user, by=admin_user, roles=["viewer"], reason="off the review rota"
    )
    assert (await queue.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}
    assert await live.receive_nothing(timeout=0.3)

    await sync_to_async(services.set_operator_active)(
        user, by=admin_user, active=False, reason="left the company"
    )
    assert (await live.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}
