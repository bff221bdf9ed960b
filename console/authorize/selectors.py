"""Reads of the authorization configuration and history shared by the pipeline, the API
and the console pages."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import Action, Guardrail, Mode, Policy, Rule

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
