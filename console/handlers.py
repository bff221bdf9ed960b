"""Django's ASGI handler, with one thread hop per ordinary request and long-polls that hold
no thread while they wait.

A request for a synchronous view (every view but the approvals long-poll) runs its whole
middleware chain and view in one call on the request's thread
(``WardenASGIHandler.get_response_async``). Django's own ASGI path runs the middleware as
an async chain, and each of our synchronous middleware hooks then hops to the request's
thread and back: 18 hops for ``/healthz`` (counted in tests/console/test_asgi_handler.py),
a wait for the event loop at every hop, and 1.5-2 ms of CPU per request in
``bench/evaluate.py`` (the bare endpoint 7.3 -> 5.1-5.9 ms, a governed proposal 16-17 ->
14.2-15.7 ms). Async views keep Django's path.

Django runs each request's short synchronous steps (the ``request_started`` and
``request_finished`` signals, middleware hooks, sync views) on a thread of the request's own:
it starts a thread for every request and, when the request ends, another one that joins
it. Here an ordinary request borrows a thread kept between requests (``RequestThreads``),
as a threaded WSGI server does: measured with asgiref alone, 250 µs less CPU per request
(two thread starts). For a long-poll the request's thread would sit idle for the whole
wait: a thousand waiting agents, a thousand threads. A request that asks to wait
(``?wait=N`` > 0 on a long-poll route) instead runs those steps on one shared thread, each
step a few microseconds; its wait is a coroutine on the event loop (``approvals.longpoll``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import parse_qs

import django
from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.urls import Resolver404, resolve

# Routes whose ``wait`` parameter makes the request a long-poll.
LONG_POLL_PREFIXES = ("/api/v1/approvals/",)

# One call at a time on one thread, as ThreadSensitiveContext requires of a given executor.
_waiting_steps = ThreadPoolExecutor(max_workers=1, thread_name_prefix="long-poll-steps")


class RequestThread(ThreadPoolExecutor):
    """One thread that runs one request's synchronous steps at a time."""

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="request")
        self._last: Future | None = None

    def submit(self, fn, /, *args, **kwargs):
        self._last = super().submit(fn, *args, **kwargs)
        return self._last

    def idle(self) -> bool:
        """Nothing submitted is still queued or running (one thread: the calls finish in
        order, so the last one finishing means all did)."""
        return self._last is None or self._last.done()


class RequestThreads:
    """The threads ordinary requests borrow, kept between requests (used from one event
    loop). At most ``keep`` idle threads are kept.

    A request normally ends with its thread idle: when the client leaves mid-view, asgiref
    waits for the cancelled call to return. Should a request end while one of its calls
    still runs (its task cancelled a second time during that wait), the thread is not lent
    again but shut down once the call returns, so no later request waits behind it."""

    def __init__(self, keep: int = 64):
        self.keep = keep
        self._idle: list[RequestThread] = []

    def borrow(self) -> RequestThread:
        return self._idle.pop() if self._idle else RequestThread()

    def give_back(self, thread: RequestThread) -> None:
        if thread.idle() and len(self._idle) < self.keep:
            self._idle.append(thread)
        else:
            thread.shutdown(wait=False)

    def __len__(self) -> int:
        return len(self._idle)


def is_long_poll(scope) -> bool:
    if scope.get("type") != "http" or not scope.get("path", "").startswith(LONG_POLL_PREFIXES):
        return False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        return int((query.get("wait") or ["0"])[0]) > 0
    except ValueError:
        return False


def _view_is_async(request) -> bool:
    """Whether the view the request resolves to is a coroutine (``View.as_view`` marks an
    async class-based view as one; a 404 is answered by the synchronous chain)."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return iscoroutinefunction(match.func)


class WardenASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        # The same middleware, built as a synchronous chain (as under WSGI).
        self._sync_handler = BaseHandler()
        self._sync_handler.load_middleware(is_async=False)
        self.threads = RequestThreads()

    async def get_response_async(self, request):
        """The middleware and a synchronous view in one call on the request's thread (the
        one its other synchronous steps run on); an async view through Django's chain."""
        if _view_is_async(request):
            return await super().get_response_async(request)
        return await sync_to_async(self._sync_handler.get_response, thread_sensitive=True)(request)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # refuses it
        if is_long_poll(scope):
            async with ThreadSensitiveContext(executor=_waiting_steps):
                await self.handle(scope, receive, send)
            return
        thread = self.threads.borrow()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(thread)


def get_asgi_application() -> WardenASGIHandler:
    """As ``django.core.asgi.get_asgi_application``, with the handler above."""
    django.setup(set_prefix=False)
    return WardenASGIHandler()


def freeze_startup_objects() -> int:
    """Load every view now and move what the process holds after start-up out of the
    cyclic garbage collector's reach (``gc.freeze``); returns how many objects that is.

    The collector's full pass walks every tracked object: in a server process that is
    mostly Django, DRF and the URL configuration, a few hundred thousand objects that live
    as long as the process. Measured in the uvicorn workers under the governed-proposal
    benchmark, a full pass paused a worker for 60-180 ms with its GIL held, which is the
    tail of the latency (an agent's proposals queue behind the one that is paused); with
    the start-up objects frozen the passes walk only what came later (bench/README)."""
    import gc

    from django.urls import get_resolver

    _ = get_resolver().url_patterns  # imports every view module, as the first request would
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
