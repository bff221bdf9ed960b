"""Fixtures for the pipeline tests: agents with scope, tier and settings, open sessions, and
a fixed clock (the pipeline takes ``now``)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from console import services
from console.authorize import services as authz

PROCUREMENT_SCOPE = {
    "allowed_actions": [
        "invoice.read",
        "invoice.flag",
        "review.route",
        "contract.draft",
        "contract.commit",
    ],
    "allowed_targets": ["vendor:*"],
    "excluded_actions": ["payment.*"],
    "sensitive_actions": ["contract.commit"],
}


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0) + dt.timedelta(minutes=1)


@pytest.fixture
def governed(make_agent):
    """``governed(tier=…, scope=…, settings=…)`` → (agent, open session)."""

    def make(*, tier: int = 2, scope=None, settings=None, name=None):
        agent = make_agent(name, tier=tier, scope=scope, settings=settings)
        return agent, services.open_session(agent, goal="test")

    return make


def propose(agent, session, name: str = "invoice.read", **fields):
    return authz.evaluate_action(agent, session, name=name, **fields)


@pytest.fixture
def trust_calls(monkeypatch):
    """Every event passed to trust.hooks.event_recorded."""
    seen = []
    import trust.hooks

    monkeypatch.setattr(trust.hooks, "event_recorded", lambda event: seen.append(event))
    return seen
