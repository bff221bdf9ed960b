"""Fixtures of the approval tests: an owner, reviewers, an agent with an open session."""

from __future__ import annotations

import pytest

from console import services


@pytest.fixture
def owner(make_operator):
    # The owner holds the reviewer role too: separation of duties must still refuse them.
    return make_operator("reviewer", username="owner-olga", password="pw-olga-123")


@pytest.fixture
def reviewer(make_operator):
    return make_operator("reviewer", username="rita", password="pw-rita-123")


@pytest.fixture
def reviewer2(make_operator):
    return make_operator("reviewer", username="rafa", password="pw-rafa-123")


@pytest.fixture
def agent(make_agent, owner):
    return make_agent("procurement", owner=owner, tier=2)


@pytest.fixture
def session(agent):
    return services.open_session(agent, goal="review invoices")


@pytest.fixture
def hooked(monkeypatch):
    """The events handed to trust.hooks.event_recorded."""
    seen = []
    monkeypatch.setattr("approvals.services.event_recorded", seen.append)
    return seen
