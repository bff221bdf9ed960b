"""Reads of the approval queue shared by pages, the API and the header badge (SPEC §4).

Every read treats a pending request whose expiry has passed as **expired** (fail closed),
whether or not the periodic job has recorded the expiry yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from audit.models import GovernanceEvent
from console.models import Agent

from . import rules
from .models import ApprovalRequest

Status = ApprovalRequest.Status
HISTORY_LENGTH = 5
QUEUE_LIMIT = 100

PRIORITY_RANK = Case(
    *[When(priority=value, then=Value(rank)) for rank, value in enumerate(rules.PRIORITIES)],
    output_field=IntegerField(),
)


def open_q(now: datetime) -> Q:
    """Pending and not past due: what the queue shows and the badge counts."""
    return Q(status=Status.PENDING) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def past_due_q(now: datetime) -> Q:
    return Q(status=Status.PENDING, expires_at__lte=now)


def effective_status(request: ApprovalRequest, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if request.status == Status.PENDING and rules.is_past_due(request.expires_at, now):
        return Status.EXPIRED
    return request.status


def sla_state(request: ApprovalRequest, now: datetime | None = None) -> str:
    return rules.sla_state(request.sla_at_risk_at, request.sla_due_at, now or timezone.now())


def pending_count(now: datetime | None = None) -> int:
    """Pending approval requests and reviews (header badge on every page)."""
    return ApprovalRequest.objects.filter(open_q(now or timezone.now())).count()


@dataclass(frozen=True)
class Filters:
    """The queue's filters (SPEC §4): agent, priority, tier, SLA state; plus kind."""

    agent: uuid.UUID | None = None
    priority: str = ""
    tier: int | None = None
    sla: str = ""
    kind: str = ""

    def as_query(self) -> dict[str, str]:
        query = {
            "agent": str(self.agent) if self.agent else "",
            "priority": self.priority,
            "tier": str(self.tier) if self.tier else "",
            "sla": self.sla,
            "kind": self.kind,
        }
        return {key: value for key, value in query.items() if value}

    @property
    def active(self) -> bool:
        return bool(self.as_query())


def parse_filters(params) -> tuple[Filters, dict[str, list[str]]]:
    """Filters from query parameters, and the reasons for any bad one (named by field)."""
    errors: dict[str, list[str]] = {}
    agent = None
    raw_agent = (params.get("agent") or "").strip()
    if raw_agent:
        try:
            agent = uuid.UUID(raw_agent)
        except ValueError:
            errors["agent"] = ["Not an agent id."]
    priority = (params.get("priority") or "").strip()
    if priority and priority not in rules.PRIORITIES:
        errors["priority"] = [f"One of {', '.join(rules.PRIORITIES)}."]
        priority = ""
    tier = None
    raw_tier = (params.get("tier") or "").strip()
    if raw_tier:
        if raw_tier in {"1", "2", "3", "4"}:
            tier = int(raw_tier)
        else:
            errors["tier"] = ["One of 1, 2, 3, 4."]
    sla = (params.get("sla") or "").strip()
    if sla and sla not in rules.SLA_STATES:
        errors["sla"] = [f"One of {', '.join(rules.SLA_STATES)}."]
        sla = ""
    kind = (params.get("kind") or "").strip()
    if kind and kind not in ApprovalRequest.Kind.values:
        errors["kind"] = [f"One of {', '.join(ApprovalRequest.Kind.values)}."]
        kind = ""
    return Filters(agent=agent, priority=priority, tier=tier, sla=sla, kind=kind), errors


def _filtered(queryset: QuerySet, filters: Filters, now: datetime) -> QuerySet:
    if filters.agent:
        queryset = queryset.filter(agent_id=filters.agent)
    if filters.priority:
        queryset = queryset.filter(priority=filters.priority)
    if filters.tier:
        queryset = queryset.filter(effective_tier=filters.tier)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.sla == "ok":
        queryset = queryset.filter(sla_at_risk_at__gt=now)
    elif filters.sla == "at_risk":
        queryset = queryset.filter(sla_at_risk_at__lte=now, sla_due_at__gt=now)
    elif filters.sla == "breached":
        queryset = queryset.filter(sla_due_at__lte=now)
    return queryset


def _with_details(queryset: QuerySet) -> QuerySet:
    return (
        queryset.select_related("agent", "agent__owner", "session", "decided_by")
        .prefetch_related("decisions__reviewer")
        .annotate(approvals_given=Count("decisions", filter=Q(decisions__decision="approve")))
    )


def queue(
    filters: Filters = Filters(), *, now: datetime | None = None, limit: int = QUEUE_LIMIT
) -> tuple[list[ApprovalRequest], int]:
    """The open queue, most urgent first (priority, then oldest), and its full size."""
    now = now or timezone.now()
    base = _filtered(ApprovalRequest.objects.filter(open_q(now)), filters, now)
    rows = list(_with_details(base).order_by(PRIORITY_RANK.desc(), "created_at", "id")[:limit])
    total = len(rows) if len(rows) < limit else base.count()
    return rows, total


def search(
    *, status: str, filters: Filters = Filters(), now: datetime | None = None, limit: int = 100
) -> list[ApprovalRequest]:
    """Requests in one effective status (or ``all``), for the API; newest first except for
    ``pending``, which is in queue order."""
    now = now or timezone.now()
    queryset = ApprovalRequest.objects.all()
    if status == Status.PENDING:
        queryset = queryset.filter(open_q(now))
    elif status == Status.EXPIRED:
        queryset = queryset.filter(Q(status=Status.EXPIRED) | past_due_q(now))
    elif status != "all":
        queryset = queryset.filter(status=status)
    queryset = _with_details(_filtered(queryset, filters, now))
    if status == Status.PENDING:
        queryset = queryset.order_by(PRIORITY_RANK.desc(), "created_at", "id")
    else:
        queryset = queryset.order_by("-created_at", "id")
    return list(queryset[:limit])


def get(approval_id) -> ApprovalRequest | None:
    try:
        pk = uuid.UUID(str(approval_id))
    except ValueError:
        return None
    return _with_details(ApprovalRequest.objects.filter(pk=pk)).first()


def queue_agents(now: datetime | None = None) -> QuerySet[Agent]:
    """Agents with something in the queue (the agent filter's choices)."""
    now = now or timezone.now()
    ids = ApprovalRequest.objects.filter(open_q(now)).values("agent_id")
    return Agent.objects.filter(id__in=ids).order_by("name")


def recent_actions(agent_ids, limit: int = HISTORY_LENGTH) -> dict[uuid.UUID, list[dict]]:
    """The last proposals of each agent, from the event log (``action.evaluated``)."""
    history: dict[uuid.UUID, list[dict]] = {}
    for agent_id in dict.fromkeys(agent_ids):
        events = GovernanceEvent.objects.filter(
            agent_id=agent_id, event_type="action.evaluated"
        ).order_by("-arrival")[:limit]
        rows = []
        for event in events:
            action = event.payload.get("action") or {}
            rows.append(
                {
                    "timestamp": event.timestamp,
                    "name": action.get("name", ""),
                    "target": action.get("target", ""),
                    "amount": action.get("amount"),
                    "currency": action.get("currency", ""),
                    "verdict": event.verdict or "",
                    "source": event.payload.get("source", ""),
                    "reason": event.reason,
                }
            )
        history[agent_id] = rows
    return history


def queue_load(*, now: datetime | None = None, hours: int = 24) -> list[dict]:
    """Requests opened per hour over the last ``hours`` hours (dashboard chart), oldest first."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    buckets = [{"start": start + timedelta(hours=i), "opened": 0} for i in range(hours)]
    created = ApprovalRequest.objects.filter(created_at__gte=start, created_at__lt=end)
    for when in created.values_list("created_at", flat=True).iterator(chunk_size=2000):
        index = int((when - start).total_seconds() // 3600)
        if 0 <= index < hours:
            buckets[index]["opened"] += 1
    return buckets


def dashboard_summary(now: datetime | None = None) -> dict:
    """The dashboard's approvals panel: what waits, how urgent, and the last day's load."""
    now = now or timezone.now()
    open_requests = ApprovalRequest.objects.filter(open_q(now))
    by_priority = dict.fromkeys(rules.PRIORITIES, 0)
    for row in open_requests.values("priority").annotate(n=Count("id")):
        by_priority[row["priority"]] = row["n"]
    oldest = open_requests.order_by("created_at").values_list("created_at", flat=True).first()
    load = queue_load(now=now)
    biggest = max([bucket["opened"] for bucket in load] + [1])
    for index, bucket in enumerate(load):
        bucket["height"] = round(40 * bucket["opened"] / biggest, 1)
        bucket["y"] = round(40 - bucket["height"], 1)
        bucket["x"] = index * 10
    return {
        "pending": sum(by_priority.values()),
        "by_priority": [(value, by_priority[value]) for value in reversed(rules.PRIORITIES)],
        "breached": open_requests.filter(sla_due_at__lte=now).count(),
        "at_risk": open_requests.filter(sla_at_risk_at__lte=now, sla_due_at__gt=now).count(),
        "oldest_seconds": (now - oldest).total_seconds() if oldest else None,
        "load": load,
        "load_total": sum(bucket["opened"] for bucket in load),
    }
