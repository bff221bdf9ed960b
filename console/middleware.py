"""Static files without pinning a thread: WhiteNoise, async-capable (SPEC §4 long-poll).

WhiteNoise's middleware is synchronous only. One synchronous middleware makes Django run
everything after it, views included, from a worker thread that stays blocked for the whole
request, so an async view (the approvals long-poll) would hold a thread while it waits.
This subclass serves static files exactly as WhiteNoise does and, under ASGI, hands every
other request on without leaving the event loop.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, *args, **kwargs):
        super().__init__(get_response, *args, **kwargs)
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self._is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(
                request.path_info
            )
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            # Opening the file is blocking I/O: keep it off the event loop.
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
