"""Fixtures for the client tests: a fake Warden on 127.0.0.1 and a client pointed at it."""

from __future__ import annotations

import pytest

from tests.client.fake_warden import FakeWarden
from warden_client import Warden


@pytest.fixture
def fake():
    server = FakeWarden().start()
    yield server
    server.stop()


@pytest.fixture
def warden(fake):
    # Short timeouts and backoff keep the retry tests fast; the logic is the same.
    client = Warden(fake.url, fake.key, timeout=2.0, retries=3, backoff=0.01)
    yield client
    client.close()
