"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from decimal import Decimal

from django.db import transaction
from rest_framework.test import APIClient

from console.models import Agent

PRODUCTION = bool(os.environ.get("DATABASE_URL")) and bool(os.environ.get("REDIS_URL"))


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def agent_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def mark_assessed(agent: Agent, tier: int = 2, risk_percent: str = "40.00") -> Agent:
    """Give an agent a risk profile without the wizard (registry tests only)."""
    Agent.objects.filter(pk=agent.pk).update(
        risk_tier=tier,
        risk_percent=Decimal(risk_percent),
        risk_profile_score=Decimal("100") - Decimal(risk_percent),
        effective_tier=tier,
    )
    agent.refresh_from_db()
    return agent


def integrate() -> int:
    """Write the log fields of every pending event (tests run inside one transaction)."""
    from audit.services import integrate_pending

    with transaction.atomic():
        return integrate_pending(wait=True)


def events_of(event_type: str, **filters):
    from audit.models import GovernanceEvent

    return list(
        GovernanceEvent.objects.filter(event_type=event_type, **filters).order_by("arrival")
    )
