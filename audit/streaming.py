"""Streaming file responses with constant memory under both servers.

Django's ASGI handler consumes a *synchronous* streaming iterator whole before sending it
(``sync_to_async(list)``), which would hold a million-row export in memory under uvicorn.
So under ASGI the chunks are pulled one at a time through ``sync_to_async`` (the same
thread each time, so the database cursor stays with its connection); under WSGI and the
test client the plain iterator is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse

CHUNK = 1 << 16


def _is_asgi(request) -> bool:
    return isinstance(getattr(request, "_request", request), ASGIRequest)


async def _pull(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    iterator = iter(chunks)
    step = sync_to_async(next, thread_sensitive=True)
    try:
        while (chunk := await step(iterator, None)) is not None:
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def attachment(
    request, chunks: Iterator[bytes], *, filename: str, content_type: str
) -> StreamingHttpResponse:
    content = _pull(chunks) if _is_asgi(request) else chunks
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Accel-Buffering"] = "no"  # proxies: pass the stream on as it comes
    response["Cache-Control"] = "no-store"
    return response


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def deliver_export(request, export):
    """The response for a direct export: the CSV streamed as it is read, or the .xlsx
    written to its file first (a zip cannot be streamed before it is complete)."""
    from . import services

    headers = {"X-Warden-Export-Id": str(export.id)}
    if export.format == "csv":
        response = attachment(
            request,
            services.stream_csv(export),
            filename=export.file_name,
            content_type=CONTENT_TYPES["csv"],
        )
    else:
        services.run_export(export.id)
        response = attachment(
            request,
            file_chunks(services.export_path(export)),
            filename=export.file_name,
            content_type=CONTENT_TYPES["xlsx"],
        )
    for name, value in headers.items():
        response[name] = value
    return response
