"""Websockets through the real ASGI application (SPEC §8, security baseline).

Each socket goes through ``console.asgi.application`` exactly as a browser's would: the
Origin header is checked against ALLOWED_HOSTS, the session cookie identifies the
operator, and each stream checks its role. Runs on the in-memory layer (embedded) and on
channels_redis (production mode).
"""

from __future__ import annotations

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from approvals.hints import QUEUE_GROUP
from console.asgi import application
from console.hints import FLEET_GROUP
from tests.helpers import events_of

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

SAME_ORIGIN = b"http://localhost"
STREAMS = ("/ws/live/", "/ws/approvals/")


@pytest.fixture(autouse=True)
def _close_worker_connection():
    """ORM work from sync_to_async runs on asgiref's worker thread: close its connection."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(10)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def _open(path: str, *, origin: bytes | None = SAME_ORIGIN, session: str | None = None):
    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if session is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.parametrize("path", STREAMS)
async def test_anonymous_sockets_are_refused(path):
    communicator, connected, code = await _open(path)
    assert not connected and code == 4401
    await communicator.wait()


@pytest.mark.parametrize("path", STREAMS)
async def test_a_forged_session_cookie_is_anonymous(path):
    communicator, connected, code = await _open(path, session="not-a-real-session-key")
    assert not connected and code == 4401


@pytest.mark.parametrize("path", STREAMS)
@pytest.mark.parametrize(
    "origin",
    [b"https://evil.example", b"http://localhost.evil.example", b"null", None],
    ids=["foreign", "suffix-trick", "null", "missing"],
)
async def test_foreign_or_missing_origins_are_refused_even_with_a_session(
    make_operator, path, origin
):
    user = await sync_to_async(make_operator)("admin")
    session = await sync_to_async(_session_cookie)(user)
    communicator, connected, _ = await _open(path, origin=origin, session=session)
    assert not connected


@pytest.mark.parametrize("path", STREAMS)
async def test_logged_in_same_origin_operator_is_accepted(make_operator, path):
    user = await sync_to_async(make_operator)("reviewer")
    session = await sync_to_async(_session_cookie)(user)
    communicator, connected, _ = await _open(path, session=session)
    assert connected
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.parametrize("path", STREAMS)
async def test_a_message_that_is_not_an_object_is_ignored(make_operator, path):
    """The sockets are one-way: anything but a ping is dropped, whatever its JSON shape,
    and the socket stays open (a list once raised inside the live consumer)."""
    user = await sync_to_async(make_operator)("reviewer")
    session = await sync_to_async(_session_cookie)(user)
    communicator, connected, _ = await _open(path, session=session)
    assert connected
    for junk in ([], ["ping"], "ping", 7, None):
        await communicator.send_json_to(junk)
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


async def test_a_logged_out_session_no_longer_opens_a_socket(make_operator):
    user = await sync_to_async(make_operator)("viewer")

    def login_then_logout():
        client = Client()
        client.force_login(user)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        client.post("/logout/")
        return key

    session = await sync_to_async(login_then_logout)()
    communicator, connected, code = await _open("/ws/live/", session=session)
    assert not connected and code == 4401


async def test_an_inactive_operator_is_refused(make_operator):
    user = await sync_to_async(make_operator)("admin")
    session = await sync_to_async(_session_cookie)(user)
    user.is_active = False
    await sync_to_async(user.save)()
    communicator, connected, code = await _open("/ws/approvals/", session=session)
    assert not connected and code == 4401


async def test_a_user_without_any_role_gets_no_live_stream(make_operator):
    user = await sync_to_async(make_operator)()  # a Django user, but no Warden role
    session = await sync_to_async(_session_cookie)(user)
    communicator, connected, code = await _open("/ws/live/", session=session)
    assert not connected and code == 4403


@pytest.mark.parametrize("role", ["viewer", "oncall", "compliance"])
async def test_roles_without_decide_get_nothing_from_the_approval_stream(make_operator, role):
    user = await sync_to_async(make_operator)(role)
    session = await sync_to_async(_session_cookie)(user)
    communicator, connected, code = await _open("/ws/approvals/", session=session)
    assert not connected and code == 4403
    # Nothing sent to the queue reaches the refused socket, and the refusal is an event.
    await get_channel_layer().group_send(QUEUE_GROUP, {"type": "hint", "topic": "approval"})
    assert await communicator.receive_nothing(timeout=0.3)
    denied = await sync_to_async(events_of)("access.denied")
    assert [(e.actor, e.payload["method"]) for e in denied] == [
        (f"user:{user.get_username()}", "WEBSOCKET")
    ]


async def test_a_reviewer_receives_queue_hints_a_viewer_does_not(make_operator):
    reviewer = await sync_to_async(make_operator)("reviewer")
    viewer = await sync_to_async(make_operator)("viewer")
    queue, connected, _ = await _open(
        "/ws/approvals/", session=await sync_to_async(_session_cookie)(reviewer)
    )
    assert connected
    live, connected, _ = await _open(
        "/ws/live/", session=await sync_to_async(_session_cookie)(viewer)
    )
    assert connected
    await get_channel_layer().group_send(
        QUEUE_GROUP, {"type": "hint", "topic": "approval", "kind": "opened"}
    )
    hint = await queue.receive_json_from(timeout=5)
    assert hint == {"type": "hint", "topic": "approval", "kind": "opened"}
    assert await live.receive_nothing(timeout=0.3)
    # Both are on the fleet stream.
    await get_channel_layer().group_send(
        FLEET_GROUP, {"type": "hint", "topic": "agent", "kind": "paused", "agent_id": "x"}
    )
    assert (await live.receive_json_from(timeout=5))["kind"] == "paused"
    assert (await queue.receive_json_from(timeout=5))["kind"] == "paused"
    await queue.disconnect()
    await live.disconnect()
