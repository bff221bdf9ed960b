"""Static files through the async-capable WhiteNoise middleware, both ways (console/middleware.py)."""

import pytest
from django.test import AsyncClient, Client

from console.middleware import StaticFilesMiddleware

pytestmark = pytest.mark.django_db


def test_it_can_run_in_an_async_chain():
    assert StaticFilesMiddleware.async_capable and StaticFilesMiddleware.sync_capable


def test_static_files_are_served_to_sync_clients():
    response = Client().get("/static/approvals/queue.js")
    assert response.status_code == 200
    assert b"approval queue" in b"".join(response.streaming_content)


async def test_static_files_and_pages_are_served_under_asgi():
    client = AsyncClient()
    response = await client.get("/static/console/live.js")
    assert response.status_code == 200
    assert (await client.get("/healthz")).content == b"ok"
