"""Reads of the registry shared by pages and APIs."""

from __future__ import annotations

from django.db.models import Count, F, QuerySet

from audit.keys import FIRST_KEY_VALID_FROM, keyring
from audit.models import GovernanceEvent
from audit.selectors import with_agent_names
from audit.services import integration_lag

from .models import Agent, AgentSession, ApiKey, OperatorToken

CONTAINMENT_EVENTS = (
    "agent.registered",
    "agent.updated",
    "agent.paused",
    "agent.resumed",
    "agent.revoked",
    "key.issued",
    "key.revoked",
    "session.halted",
    "session.revoked",
)


def agents_for_list(status: str = "") -> QuerySet[Agent]:
    agents = Agent.objects.select_related("owner").order_by("name")
    if status in Agent.Status.values:
        agents = agents.filter(status=status)
    return agents


def fleet_by_status() -> dict[str, int]:
    counts = dict.fromkeys(Agent.Status.values, 0)
    for row in Agent.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def fleet_by_tier() -> list[dict]:
    """Agents per effective tier (risk tier until trust is computed), unassessed apart."""
    rows = []
    labels = {1: "Low", 2: "Medium", 3: "High", 4: "Critical"}
    agents = Agent.objects.exclude(status=Agent.Status.REVOKED)
    for tier in (1, 2, 3, 4):
        count = (
            agents.filter(effective_tier=tier).count()
            + agents.filter(effective_tier__isnull=True, risk_tier=tier).count()
        )
        rows.append({"tier": tier, "label": labels[tier], "count": count})
    rows.append(
        {
            "tier": None,
            "label": "Not assessed",
            "count": agents.filter(risk_tier__isnull=True).count(),
        }
    )
    return rows


def containment_history(agent: Agent, limit: int = 50) -> QuerySet[GovernanceEvent]:
    return (
        GovernanceEvent.objects.filter(agent_id=agent.id, event_type__in=CONTAINMENT_EVENTS)
        .select_related("log")
        .order_by("-arrival")[:limit]
    )


def open_sessions(agent: Agent) -> QuerySet[AgentSession]:
    return agent.sessions.filter(status=AgentSession.Status.OPEN).order_by("-started_at")


def recent_events(limit: int = 15) -> list[GovernanceEvent]:
    """The newest events, each with its agent's name (``agent_name``)."""
    return with_agent_names(
        list(GovernanceEvent.objects.select_related("log").order_by("-arrival")[:limit])
    )


def dashboard_context() -> dict:
    from trust.selectors import dashboard_context as trust_context

    status_counts = fleet_by_status()
    tiers = fleet_by_tier()
    biggest = max([row["count"] for row in tiers] + [1])
    for row in tiers:
        row["width"] = round(100 * row["count"] / biggest)
    return {
        "status_counts": status_counts,
        "total_agents": sum(status_counts.values()),
        "tiers": tiers,
        "recent_events": recent_events(),
        "open_sessions": AgentSession.objects.filter(status=AgentSession.Status.OPEN).count(),
        "lag": integration_lag(),
        **trust_context(),  # trust movers of the week and open alerts (trust app)
    }


def operator_tokens() -> QuerySet[OperatorToken]:
    """Every operator API token, live ones first (prefixes only: the secrets are hashed)."""
    return OperatorToken.objects.select_related("user").order_by(
        F("revoked_at").desc(nulls_first=True), "user__username", "-created_at"
    )


def agent_keys() -> QuerySet[ApiKey]:
    """Every agent API key, live ones first, newest first (prefixes only)."""
    return ApiKey.objects.select_related("agent", "created_by").order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at"
    )


def signing_keys() -> list[dict]:
    """The log's public keys, newest first, as ``/.well-known/warden-keys.json`` lists
    them; ``signing`` marks the one new events are signed with."""
    keys = sorted(keyring().public_keys(), key=lambda key: key.valid_from, reverse=True)
    return [
        dict(
            key.as_json(),
            signing=key.valid_until is None,
            first=key.valid_from == FIRST_KEY_VALID_FROM,  # it covers the log from its start
        )
        for key in keys
    ]
