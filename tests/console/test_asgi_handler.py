"""The ASGI handler runs an ordinary request's middleware and view in one thread hop, on a
thread kept between requests, and an async view (the approvals long-poll) through Django's
async chain (console/handlers.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import SyncToAsync
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started

from console.handlers import RequestThread, RequestThreads, WardenASGIHandler


def http_scope(path: str, query: bytes = b"") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def call(handler, path: str, query: bytes = b"") -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    asyncio.run(handler(http_scope(path, query), receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {name.lower(): value for name, value in start["headers"]}


@pytest.fixture
def hops(monkeypatch):
    """Counts sync_to_async calls (hops from the event loop to a thread)."""
    counted = {"n": 0}
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        counted["n"] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return counted


def test_a_sync_view_costs_one_hop_for_middleware_and_view(transactional_db, hops):
    status, headers = call(WardenASGIHandler(), "/healthz")
    ours = hops["n"]
    hops["n"] = 0
    django_status, django_headers = call(ASGIHandler(), "/healthz")
    assert status == django_status == 200
    # The same middleware ran: its headers are there.
    assert headers.keys() == django_headers.keys()
    assert b"content-security-policy" in headers and b"x-frame-options" in headers
    # The request_started/finished signals, the response's close and the one call.
    assert ours <= 4
    assert hops["n"] >= ours + 10  # Django's async chain: a hop per middleware hook


def test_a_missing_page_is_answered_by_the_sync_chain(transactional_db, hops):
    status, _ = call(WardenASGIHandler(), "/no/such/page")
    assert status == 404
    assert hops["n"] <= 4


def test_an_async_view_keeps_djangos_async_chain(transactional_db):
    # The approvals long-poll is a coroutine; without a key it is refused, by the view.
    status, headers = call(WardenASGIHandler(), "/api/v1/approvals/abc")
    assert status == 401
    assert b"content-security-policy" in headers


@pytest.fixture
def request_threads():
    """The thread each request's ``request_started`` signal ran on, in order."""
    seen: list[threading.Thread] = []

    def started(**kwargs):
        seen.append(threading.current_thread())

    request_started.connect(started)
    yield seen
    request_started.disconnect(started)


def test_requests_one_after_another_run_on_one_kept_thread(transactional_db, request_threads):
    handler = WardenASGIHandler()
    for _ in range(3):
        assert call(handler, "/healthz")[0] == 200
    seen = request_threads
    assert len(seen) == 3
    assert seen[0] is not threading.main_thread()
    assert seen[0].name.startswith("request")
    assert seen[1] is seen[0] and seen[2] is seen[0]  # Django alone starts one per request
    assert len(handler.threads) == 1  # idle, lent to the next request


def test_a_thread_still_running_a_call_is_not_lent_again():
    threads = RequestThreads()
    release = threading.Event()
    busy = threads.borrow()
    running = busy.submit(release.wait, 10)
    threads.give_back(busy)  # its request ended while a call still ran
    assert len(threads) == 0
    assert threads.borrow() is not busy
    release.set()
    assert running.result(timeout=10) is True
    # Shut down once its call returned: nothing more can be given to it.
    with pytest.raises(RuntimeError):
        busy.submit(print)


def test_at_most_keep_idle_threads_are_kept():
    threads = RequestThreads(keep=2)
    lent = [threads.borrow() for _ in range(3)]
    for thread in lent:
        threads.give_back(thread)
    assert len(threads) == 2
    assert isinstance(threads.borrow(), RequestThread)


def test_a_client_that_leaves_mid_view_leaves_its_thread_reusable(
    transactional_db, request_threads
):
    """asgiref waits for a cancelled call's thread to return, so the request ends with its
    thread idle, and the thread is lent again."""
    handler = WardenASGIHandler()
    entered = threading.Event()
    finished: list[threading.Thread] = []
    respond = handler._sync_handler.get_response

    def slow_response(request):
        entered.set()
        time.sleep(0.3)  # still running when the client leaves
        finished.append(threading.current_thread())
        return respond(request)

    handler._sync_handler.get_response = slow_response
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
        return {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    asyncio.run(handler(http_scope("/healthz"), receive, send))
    assert sent == []  # the request was abandoned: nothing was answered
    assert len(finished) == 1  # the view ran to its end
    assert len(handler.threads) == 1
    handler._sync_handler.get_response = respond
    assert call(handler, "/healthz")[0] == 200
    assert request_threads == finished * 2  # the abandoned request, then the next one
