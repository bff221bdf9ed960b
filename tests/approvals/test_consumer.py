"""The approval queue's websocket (SPEC §4 live queue): reviewers only, same origin only,
a hint for every change after commit — on the in-memory layer and on channels_redis."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.test import override_settings

from approvals import services
from approvals.consumers import QueueConsumer
from console import services as console_services
from console.asgi import application
from tests.approvals.helpers import propose_needing_approval
from tests.helpers import PRODUCTION, events_of

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(
    params=[
        pytest.param("memory", id="in-memory"),
        pytest.param("redis", id="channels_redis", marks=pytest.mark.production),
    ]
)
def layer(request):
    """The channel layer under test: in-memory in both modes, Redis in production mode."""
    if request.param == "memory":
        with override_settings(CHANNEL_LAYERS=IN_MEMORY):
            yield request.param
        return
    from channels_redis.core import RedisChannelLayer

    assert PRODUCTION and isinstance(get_channel_layer(), RedisChannelLayer)
    yield request.param


@pytest.fixture(autouse=True)
def _close_worker_connection():
    """sync_to_async work runs on asgiref's worker thread: end its connection after each
    test, or the test database could not be dropped at the end of the run."""
    yield
    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(10)


async def _connect(user, path="/ws/approvals/"):
    communicator = WebsocketCommunicator(QueueConsumer.as_asgi(), path)
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _hints(communicator, count, timeout=5):
    return [await communicator.receive_json_from(timeout=timeout) for _ in range(count)]


async def test_anonymous_sockets_are_closed(layer):
    communicator = WebsocketCommunicator(QueueConsumer.as_asgi(), "/ws/approvals/")
    communicator.scope["user"] = AnonymousUser()
    connected, code = await communicator.connect()
    assert not connected and code == 4401


@pytest.mark.parametrize("role", ["viewer", "oncall", "compliance"])
async def test_operators_without_the_reviewer_role_are_refused(layer, make_operator, role):
    user = await sync_to_async(make_operator)(role)
    _, connected, code = await _connect(user)
    assert not connected and code == 4403
    (denied,) = await sync_to_async(events_of)("access.denied")
    assert denied.payload["method"] == "WEBSOCKET" and denied.payload["permission"] == "decide"


async def test_foreign_origins_are_refused_by_the_application(layer):
    communicator = WebsocketCommunicator(
        application, "/ws/approvals/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_reviewer_hears_of_new_decided_and_cancelled_requests(
    layer, reviewer, agent, session, admin_user
):
    communicator, connected, _ = await _connect(reviewer)
    assert connected
    approval = await sync_to_async(propose_needing_approval)(agent, session)
    (opened,) = await _hints(communicator, 1)
    assert opened == {
        "type": "hint",
        "topic": "approval",
        "kind": "requested",
        "approval_id": str(approval.id),
        "agent_id": str(agent.id),
        "status": "pending",
    }
    await sync_to_async(services.decide)(approval, by=reviewer, decision="approve")
    (decided,) = await _hints(communicator, 1)
    assert decided["kind"] == "decided" and decided["status"] == "approved"

    other = await sync_to_async(propose_needing_approval)(agent, session, target="vendor:x")
    await _hints(communicator, 1)
    await sync_to_async(console_services.revoke_agent)(agent, by=admin_user, reason="rogue")
    # The cancellation, then the agent's own hint from the fleet group.
    hints = await _hints(communicator, 2)
    cancelled = next(h for h in hints if h["topic"] == "approval")
    assert cancelled["kind"] == "cancelled" and cancelled["approval_id"] == str(other.id)
    assert any(h["topic"] == "agent" and h["kind"] == "revoked" for h in hints)
    assert await communicator.receive_nothing(timeout=0.2)  # no duplicate "count" hint
    await communicator.disconnect()


async def test_the_fleet_hears_that_the_count_changed(layer, make_operator, agent, session):
    from console.consumers import LiveConsumer

    viewer = await sync_to_async(make_operator)("viewer")
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = viewer
    assert (await communicator.connect())[0]
    await sync_to_async(propose_needing_approval)(agent, session)
    hint = await communicator.receive_json_from(timeout=5)
    assert hint == {"type": "hint", "topic": "approval", "kind": "count"}
    await communicator.disconnect()


async def test_pings_are_answered(layer, reviewer):
    communicator, connected, _ = await _connect(reviewer)
    assert connected
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


async def test_a_disconnected_reviewer_leaves_the_groups(layer, reviewer, agent, session):
    communicator, _, _ = await _connect(reviewer)
    await communicator.disconnect()
    await sync_to_async(propose_needing_approval)(agent, session)
    # Nothing is queued for the departed socket (the in-memory layer shows it directly).
    if layer == "memory":
        assert not get_channel_layer().groups.get("approvals")
