"""Reads of the authorization configuration and history shared by the pipeline, the API
and the console pages."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Action, ActionVerdict, Guardrail, Mode, Policy, Rule

ACTIVE = (Mode.ENFORCE, Mode.SHADOW)


def _for_agent(queryset: QuerySet, agent) -> QuerySet:
    if agent is None:
        return queryset.filter(agent__isnull=True)
    return queryset.filter(Q(agent__isnull=True) | Q(agent_id=agent.id))


def live_policies(agent=None) -> QuerySet[Policy]:
    """Policies not deleted (all of them, or those that apply to ``agent``)."""
    query = Policy.objects.filter(deleted_at__isnull=True)
    return _for_agent(query, agent) if agent is not None else query.order_by("name")


def live_rules(agent=None) -> QuerySet[Rule]:
    query = Rule.objects.filter(deleted_at__isnull=True)
    return _for_agent(query, agent) if agent is not None else query


def live_guardrails(agent=None) -> QuerySet[Guardrail]:
    query = Guardrail.objects.filter(deleted_at__isnull=True)
    return _for_agent(query, agent) if agent is not None else query


def _applicable(queryset: QuerySet, agent, every_agent: bool) -> QuerySet:
    return queryset if every_agent else _for_agent(queryset, agent)


def applicable_policies(agent, *, every_agent: bool = False) -> list[Policy]:
    """What the pipeline evaluates for ``agent`` (or for any agent): enforce or shadow, by
    name."""
    query = Policy.objects.filter(deleted_at__isnull=True, mode__in=ACTIVE)
    return list(_applicable(query, agent, every_agent).order_by("name"))


def applicable_rules(agent, *, every_agent: bool = False) -> list[Rule]:
    """By priority (100 first), then name."""
    query = Rule.objects.filter(deleted_at__isnull=True, mode__in=ACTIVE)
    return list(_applicable(query, agent, every_agent).order_by("-priority", "name"))


def applicable_guardrails(agent, *, every_agent: bool = False) -> list[Guardrail]:
    query = Guardrail.objects.filter(deleted_at__isnull=True, enforcement__in=ACTIVE)
    return list(_applicable(query, agent, every_agent).order_by("name"))


def actions_of(agent, *, start=None, end=None) -> QuerySet[Action]:
    query = Action.objects.filter(agent_id=agent.id)
    if start is not None:
        query = query.filter(created_at__gte=start)
    if end is not None:
        query = query.filter(created_at__lt=end)
    return query.order_by("created_at")


# --- reads of the console pages (Authorize tab, editor, settings) ------------------------
def recent_actions(agent, limit: int = 20) -> QuerySet[Action]:
    """The agent's latest actions, newest first (index ``console_action_agent_time``)."""
    return Action.objects.filter(agent_id=agent.id).order_by("-created_at")[:limit]


def verdict_counts(agent, *, since) -> dict[str, int]:
    """Actions of ``agent`` per verdict since ``since`` (one indexed aggregate)."""
    from django.db.models import Count

    counts = dict.fromkeys(ActionVerdict.values, 0)
    rows = (
        Action.objects.filter(agent_id=agent.id, created_at__gte=since)
        .values("verdict")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["verdict"]] = row["n"]
    return counts


def daily_verdicts(agent, *, since) -> list[tuple]:
    """``(day, verdict, count)`` of ``agent``'s actions since ``since``, days in UTC."""
    import datetime as dt

    from django.db.models import Count
    from django.db.models.functions import TruncDate

    rows = (
        Action.objects.filter(agent_id=agent.id, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .values("day", "verdict")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(row["day"], row["verdict"], row["n"]) for row in rows]


def recent_shadow_verdicts(agent, *, scan: int = 300, limit: int = 20) -> list[dict]:
    """What shadow layers would have done on ``agent``'s latest proposals.

    Reads the newest ``scan`` ``action.evaluated`` events of the agent (index
    ``audit_event_agent``) and keeps those with ``shadow_verdicts``: one row per shadow
    verdict, newest first, at most ``limit``.
    """
    from audit.models import GovernanceEvent

    events = (
        GovernanceEvent.objects.filter(agent_id=agent.id, event_type="action.evaluated")
        .only("id", "timestamp", "verdict", "session_id", "payload_json")
        .order_by("-arrival")[:scan]
    )
    rows: list[dict] = []
    for event in events:
        payload = event.payload
        action = payload.get("action") or {}
        for shadow in payload.get("shadow_verdicts") or ():
            rows.append(
                {
                    "event_id": event.id,
                    "timestamp": event.timestamp,
                    "session_id": event.session_id,
                    "action_id": payload.get("action_id"),
                    "name": action.get("name", ""),
                    "target": action.get("target", ""),
                    "verdict": event.verdict,
                    "shadow_source": shadow.get("source", ""),
                    "shadow_verdict": shadow.get("verdict", ""),
                    "shadow_reason": shadow.get("reason", ""),
                }
            )
            if len(rows) >= limit:
                return rows
    return rows


def canary_guardrails() -> QuerySet[Guardrail]:
    """Live canary token sets, newest first (their tokens stay sealed)."""
    return (
        Guardrail.objects.filter(kind=Guardrail.Kind.CANARY, deleted_at__isnull=True)
        .select_related("agent", "created_by")
        .order_by("-created_at")
    )


def config_history(event_types: tuple[str, ...], object_id, *, scan: int = 500, limit: int = 20):
    """The latest events about one policy, rule or guardrail (``payload.id``), newest first.

    Scans the newest ``scan`` events of these types (index ``audit_event_type``); the
    payload is JSON text, so the id is matched here rather than in SQL.
    """
    from audit.models import GovernanceEvent

    wanted = str(object_id)
    found = []
    events = (
        GovernanceEvent.objects.filter(event_type__in=event_types)
        .select_related("log")
        .order_by("-arrival")[:scan]
    )
    for event in events:
        if event.payload.get("id") == wanted:
            found.append(event)
            if len(found) >= limit:
                break
    return found
