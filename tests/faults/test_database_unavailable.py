"""A database error during a request is answered 503 with Retry-After, not 500 (found by
the PostgreSQL restart test, tests/faults/test_postgres_restart.py)."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError

from console.authorize import services as authz
from tests.helpers import agent_client


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_proposal_meeting_a_database_error_is_answered_503(agent_with_key, monkeypatch, error):
    _, key = agent_with_key
    client = agent_client(key)
    session = client.post("/api/v1/sessions", {"goal": "g"}, format="json").json()["session_id"]

    def unavailable(*args, **kwargs):
        raise error("server closed the connection unexpectedly")

    monkeypatch.setattr(authz, "evaluate_action", unavailable)
    response = client.post(
        f"/api/v1/sessions/{session}/actions",
        {"name": "invoice.read", "target": "vendor:acme"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "service_unavailable"


class DatabaseGoneMiddleware:
    """Stands for any middleware that reads the database (sessions, authentication)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise OperationalError("consuming input failed: server closed the connection")


@pytest.mark.parametrize("path", ["/api/v1/agents", "/agents/"])
def test_a_database_error_outside_the_view_is_answered_503_too(db, settings, path):
    from django.test import Client

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.DatabaseGoneMiddleware"]
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "service_unavailable"
