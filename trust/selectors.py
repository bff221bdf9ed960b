"""Reads of the trust app: the events the reducer consumes, and what pages show.

The reducer reads integrated events only (they have a log ``seq``), in ``seq`` order: once
seq N is visible every smaller seq is too (the integrator commits batches in order under
one lock), so a watermark on ``seq`` never skips an event that commits late.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Max, Min, QuerySet

from audit.models import EventLogEntry
from console.models import Agent

from . import chart, reducer
from .models import Alert, TrustHistory

TYPES = tuple(sorted(reducer.CONSUMED_TYPES))

_PG_EVENTS = """
SELECT l.seq, e.agent_id::text, e.id::text, e.event_type, e.timestamp, e.session_id::text,
       e.verdict, e.result, e.payload_json
FROM audit_eventlogentry l JOIN audit_governanceevent e ON e.arrival = l.event_arrival
WHERE e.event_type = ANY(%s) AND e.agent_id IS NOT NULL {agents} {after}
ORDER BY l.seq
"""


def _event(seq, event_id, event_type, timestamp, session_id, verdict, result, payload_json):
    return reducer.Event(
        id=event_id,
        seq=seq,
        type=event_type,
        at=timestamp.astimezone(UTC),
        session_id=session_id,
        verdict=verdict,
        result=result,
        payload=json.loads(payload_json) if event_type != "agent.registered" else {},
    )


def _orm_rows(agent_ids: Iterable | None, after_seq: int):
    rows = (
        EventLogEntry.objects.filter(
            event__event_type__in=TYPES, event__agent_id__isnull=False, seq__gt=after_seq
        )
        .order_by("seq")
        .values_list(
            "seq",
            "event__agent_id",
            "event__id",
            "event__event_type",
            "event__timestamp",
            "event__session_id",
            "event__verdict",
            "event__result",
            "event__payload_json",
        )
    )
    if agent_ids is not None:
        rows = rows.filter(event__agent_id__in=list(agent_ids))
    for seq, agent_id, event_id, *rest in rows.iterator(chunk_size=2000):
        session_id = rest[2]
        yield (
            seq,
            str(agent_id),
            str(event_id),
            rest[0],
            rest[1],
            str(session_id) if session_id else None,
            *rest[3:],
        )


def _rows(agent_ids: Iterable | None, after_seq: int, chunk_size: int):
    if connection.vendor != "postgresql":
        yield from _orm_rows(agent_ids, after_seq)
        return
    params: list = [list(TYPES)]
    agents_sql = after_sql = ""
    if agent_ids is not None:
        agents_sql = "AND e.agent_id = ANY(%s::uuid[])"
        params.append([str(agent_id) for agent_id in agent_ids])
    if after_seq:
        after_sql = "AND l.seq > %s"
        params.append(after_seq)
    sql = _PG_EVENTS.format(agents=agents_sql, after=after_sql)
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            yield from rows


def trust_events(agent_id, after_seq: int = 0) -> list[reducer.Event]:
    """The agent's events the reducer consumes, after ``after_seq``, in log order."""
    return [
        _event(seq, event_id, *rest)
        for seq, _agent, event_id, *rest in _rows([agent_id], after_seq, 2000)
    ]


def stream_trust_events(
    agent_ids: Iterable | None = None, *, chunk_size: int = 5000
) -> Iterator[tuple[str, reducer.Event]]:
    """Every consumed event of every agent (or of ``agent_ids``), in log order."""
    for seq, agent_id, event_id, *rest in _rows(agent_ids, 0, chunk_size):
        yield agent_id, _event(seq, event_id, *rest)


def agents_with_events_after(after_seq: int, upto_seq: int, types: Iterable[str]) -> set[str]:
    """Agents with an event of ``types`` whose seq is in (after_seq, upto_seq]."""
    ids = (
        EventLogEntry.objects.filter(
            seq__gt=after_seq,
            seq__lte=upto_seq,
            event__event_type__in=list(types),
            event__agent_id__isnull=False,
        )
        .values_list("event__agent_id", flat=True)
        .distinct()
    )
    return {str(agent_id) for agent_id in ids}


# --- pages ----------------------------------------------------------------------------
def history(agent: Agent, *, before: int | None = None, limit: int = 50) -> list[TrustHistory]:
    """An agent's history newest first, ``limit`` rows older than row id ``before``."""
    rows = TrustHistory.objects.for_agent(agent)
    if before is not None:
        rows = rows.filter(id__lt=before)
    return list(rows[:limit])


def open_alerts(agent: Agent | None = None, limit: int = 10) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(acknowledged_at__isnull=True).select_related("agent")
    if agent is not None:
        alerts = alerts.filter(agent=agent)
    return alerts.order_by("-created_at")[:limit]


def open_alert_count() -> int:
    return Alert.objects.filter(acknowledged_at__isnull=True).count()


def chart_for(agent: Agent, range_key: str, now: datetime) -> chart.Chart:
    """The Monitor tab's chart: the score over the range, with the changes that moved it."""
    days = chart.RANGES[range_key]
    start = now - timedelta(days=days)
    before = (
        TrustHistory.objects.filter(agent=agent, effective_at__lt=start)
        .order_by("-effective_at", "-id")
        .values_list("new_score", "new_tier")
        .first()
    )
    rows = TrustHistory.objects.filter(
        agent=agent, effective_at__gte=start, effective_at__lte=now
    ).order_by("effective_at", "id")
    points = [
        chart.Point(
            at=row.effective_at,
            score=row.new_score,
            tier=row.new_tier,
            previous_score=row.previous_score,
            change_type=row.change_type,
            label=row.get_change_type_display(),
            reason=row.change_reason,
        )
        for row in rows
    ]
    initial = (before[0], before[1]) if before else None
    return chart.build(points, start=start, end=now, initial=initial)


def components(agent: Agent) -> list[dict]:
    """SPEC §5.1 breakdown: each component, its weight and what it adds to the score."""
    from . import scoring

    rows = []
    for key, label, value, weight in (
        ("risk_profile", "Risk profile", agent.risk_profile_score, scoring.WEIGHT_RISK_PROFILE),
        ("behavioral", "Behavioural", agent.behavioral, scoring.WEIGHT_BEHAVIORAL),
        ("alignment", "Alignment", agent.alignment, scoring.WEIGHT_ALIGNMENT),
    ):
        contribution = (value * weight).quantize(Decimal("0.01")) if value is not None else None
        rows.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "weight": weight,
                "weight_percent": int(weight * 100),
                "contribution": contribution,
                # SVG bar width out of 100 (value is 0–100)
                "width": float(value) if value is not None else 0.0,
            }
        )
    return rows


def movers_of_the_week(now: datetime, limit: int = 5) -> list[dict]:
    """The agents whose trust score moved most over the last 7 days (either way)."""
    since = now - timedelta(days=7)
    spans = (
        TrustHistory.objects.filter(effective_at__gte=since, new_score__isnull=False)
        .values("agent_id")
        .annotate(first=Min("id"), last=Max("id"))
    )
    ids = {span["first"] for span in spans} | {span["last"] for span in spans}
    rows = TrustHistory.objects.in_bulk(list(ids))
    movers = []
    for span in spans:
        first, last = rows[span["first"]], rows[span["last"]]
        start = first.previous_score if first.previous_score is not None else first.new_score
        delta = last.new_score - start
        if delta:
            movers.append(
                {"agent_id": span["agent_id"], "from": start, "to": last.new_score, "delta": delta}
            )
    movers.sort(key=lambda row: (-abs(row["delta"]), str(row["agent_id"])))
    movers = movers[:limit]
    agents = Agent.objects.in_bulk([row["agent_id"] for row in movers])
    for row in movers:
        row["agent"] = agents[row["agent_id"]]
    return movers


def dashboard_context(now: datetime | None = None) -> dict:
    """The dashboard's trust part: biggest movers of the week and open alerts."""
    from django.utils import timezone

    return {
        "trust_movers": movers_of_the_week(now or timezone.now()),
        "trust_alerts": open_alerts(limit=8),
        "trust_alert_count": open_alert_count(),
    }
