"""``GET /api/v1/approvals/{id}?wait=N``: the agent's long-poll (SPEC §4 agent side).

An async Django view (uvicorn serves it on its event loop). A waiting request costs a
coroutine and a channel-layer subscription, nothing more:

1. it subscribes a fresh channel to the request's group (``approval.<id>``) *before* the
   first read, so a decision committed between the read and the wait still wakes it;
2. each read runs the ordinary DRF view (``ApprovalStatusView``: agent-key auth, ownership,
   the error shape) on a small dedicated thread pool, which returns the thread and its
   database connection as soon as the read is done;
3. between reads it awaits the channel layer — a hint sent after commit by
   ``approvals.services`` — until the wait is over or the request's expiry arrives (then
   the read reports ``expired``), re-reads, and answers.

No sleep loop, no thread or database connection held through the wait (the middleware
chain is async-capable end to end, see ``console.middleware``). Without ``wait`` (or
``wait=0``) it is a plain read in the request's own thread.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from audit.timefmt import parse_timestamp
from console import hints

from .api import MAX_WAIT, ApprovalStatusView
from .hints import request_group

log = logging.getLogger("warden.approvals")

# Reads of waiting long-polls: bounded threads, hence bounded database connections, however
# many agents wait at once.
READ_THREADS = 4
_reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="approval-read")
_view = ApprovalStatusView.as_view()
# A little slack after the expiry instant, so the read that follows sees it past due.
_EXPIRY_SLACK = 0.05


def _read(request, approval_id):
    response = _view(request, approval_id=approval_id)
    response.render()
    return response


def _pooled_read(request, approval_id):
    close_old_connections()
    try:
        return _read(request, approval_id)
    finally:
        close_old_connections()


def _requested_wait(request) -> int:
    """The wait asked for, or 0 when absent or invalid (the view then answers 400)."""
    try:
        wait = int(request.GET.get("wait") or 0)
    except ValueError:
        return 0
    return wait if 0 < wait <= MAX_WAIT else 0


def _pending(response) -> bool:
    data = getattr(response, "data", None)
    return response.status_code == 200 and isinstance(data, dict) and data["status"] == "pending"


def _seconds_to_expiry(response) -> float | None:
    expires_at = response.data.get("expires_at")
    if not expires_at:
        return None
    return (parse_timestamp(expires_at) - timezone.now()).total_seconds()


def _plain(response) -> HttpResponse:
    plain = HttpResponse(response.rendered_content, status=response.status_code)
    for header, value in response.items():
        plain[header] = value
    return plain


@csrf_exempt
async def approval_status(request, approval_id):
    wait = _requested_wait(request)
    try:
        pk = uuid.UUID(str(approval_id))
    except ValueError:
        wait = 0
    layer = get_channel_layer() if wait else None
    if layer is None:
        return _plain(await sync_to_async(_read)(request, approval_id))

    read = sync_to_async(_pooled_read, thread_sensitive=False, executor=_reads)
    hints.bind_loop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    group = request_group(pk)
    channel = await _subscribe(layer, group)
    try:
        response = await read(request, approval_id)
        while _pending(response):
            timeout = deadline - loop.time()
            to_expiry = _seconds_to_expiry(response)
            if to_expiry is not None:
                timeout = min(timeout, to_expiry + _EXPIRY_SLACK)
            if timeout <= 0:
                break
            channel = await _wait_for_hint(layer, channel, timeout)
            response = await read(request, approval_id)
        return _plain(response)
    finally:
        if channel is not None:
            await _unsubscribe(layer, group, channel)


# Without the channel layer (Redis down), a waiting long-poll re-reads the database this
# often instead: slower to wake, never wrong — the database is the source of truth.
FALLBACK_POLL_SECONDS = 1.0


async def _subscribe(layer, group: str) -> str | None:
    try:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
    except Exception:  # the layer's backend is down or slow: poll instead
        log.warning("long-poll: channel layer unavailable, polling the database", exc_info=True)
        return None
    return channel


async def _wait_for_hint(layer, channel: str | None, timeout: float) -> str | None:
    """Wait for a hint on ``channel`` (or, without one, a polling interval); returns the
    channel to keep waiting on, or None once the layer has failed."""
    if channel is not None:
        try:
            await asyncio.wait_for(layer.receive(channel), timeout)
            return channel
        except TimeoutError:
            return channel
        except Exception:
            log.warning("long-poll: channel layer failed, polling the database", exc_info=True)
    await asyncio.sleep(min(timeout, FALLBACK_POLL_SECONDS))
    return None


async def _unsubscribe(layer, group: str, channel: str) -> None:
    try:
        await layer.group_discard(group, channel)
    except Exception:  # the group entry expires on its own (channels_redis group_expiry)
        log.warning("long-poll: could not leave %s", group, exc_info=True)


# The access matrix and the schema generator see the DRF view behind the long-poll.
approval_status.cls = ApprovalStatusView  # type: ignore[attr-defined]
approval_status.initkwargs = {}  # type: ignore[attr-defined]
