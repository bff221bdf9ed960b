"""Reads of the trust app: the events the reducer consumes, and what pages show.

The reducer reads integrated events only (they have a log ``seq``), in ``seq`` order: once
seq N is visible every smaller seq is too (the integrator commits batches in order under
one lock), so a watermark on ``seq`` never skips an event that commits late.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from django.db import connection, transaction
from django.db.models import Max, Min, QuerySet

from audit.models import EventLogEntry
from console.models import Agent

from . import chart, reducer
from .models import Alert, TrustHistory

TYPES = tuple(sorted(reducer.CONSUMED_TYPES))

# The payload is shipped only when the reducer reads it (see ``_payload``): most rows of a
# fleet's log are allowed, in-scope actions, and PostgreSQL tests that faster than Python.
_PG_EVENTS = """
SELECT l.seq, e.agent_id::text, e.id::text, e.event_type, e.timestamp, e.session_id::text,
       e.verdict, e.result,
       CASE WHEN e.event_type IN ('agent.registered', 'session.ended', 'session.halted',
                                  'session.revoked')
              OR (e.event_type = 'action.evaluated'
                  AND e.verdict IS DISTINCT FROM 'BLOCK' AND e.verdict IS DISTINCT FROM 'HALT'
                  AND strpos(e.payload_json, '"in_scope":false') = 0
                  AND strpos(e.payload_json, '"violation":{{') = 0)
            THEN NULL ELSE e.payload_json END
FROM audit_eventlogentry l JOIN audit_governanceevent e ON e.arrival = l.event_arrival
WHERE e.event_type = ANY(%s) AND e.agent_id IS NOT NULL {agents} {after} {shard}
ORDER BY l.seq
"""


# Events whose payload the reducer never reads.
_NO_PAYLOAD_TYPES = frozenset({"agent.registered"} | reducer.SESSION_END_TYPES)
# What an allowed, in-scope action's payload says to the reducer.
_ALIGNED = MappingProxyType({"in_scope": True, "violation": None})


def _payload(event_type: str, verdict: str | None, payload_json: str | None):
    """The payload the reducer needs, parsing JSON only when it has to (a rebuild reads
    every action of the fleet; most are allowed and in scope).

    ``payload_json`` is RFC 8785 canonical JSON (no whitespace; a quote inside a string is
    escaped), so the two substrings below appear exactly when the top-level ``in_scope``
    may be false or ``violation`` may be an object; a match only costs a full parse. On
    PostgreSQL the query makes the same test and sends ``None`` instead of the payload.
    """
    if event_type in _NO_PAYLOAD_TYPES:
        return reducer.NO_PAYLOAD
    if event_type == "action.evaluated" and (
        payload_json is None
        or (
            verdict not in ("BLOCK", "HALT")
            and '"in_scope":false' not in payload_json
            and '"violation":{' not in payload_json
        )
    ):
        return _ALIGNED
    return json.loads(payload_json) if payload_json is not None else {}


def _event(seq, event_id, event_type, timestamp, session_id, verdict, result, payload_json):
    return reducer.Event(
        event_id,
        seq,
        event_type,
        timestamp if timestamp.tzinfo is UTC else timestamp.astimezone(UTC),
        session_id,
        verdict,
        result,
        _payload(event_type, verdict, payload_json),
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


def _rows(
    agent_ids: Iterable | None,
    after_seq: int,
    chunk_size: int,
    shard: tuple[int, int] | None = None,
):
    if connection.vendor != "postgresql":
        rows = _orm_rows(agent_ids, after_seq)
        if shard is not None:
            index, count = shard
            rows = (row for row in rows if shard_of(row[1], count) == index)
        yield from rows
        return
    params: list = [list(TYPES)]
    agents_sql = after_sql = shard_sql = ""
    if agent_ids is not None:
        agents_sql = "AND e.agent_id = ANY(%s::uuid[])"
        params.append([str(agent_id) for agent_id in agent_ids])
    if after_seq:
        after_sql = "AND l.seq > %s"
        params.append(after_seq)
    if shard is not None:
        shard_sql = "AND ('x' || substr(e.agent_id::text, 1, 7))::bit(28)::int %% %s = %s"
        params.extend([shard[1], shard[0]])
    sql = _PG_EVENTS.format(agents=agents_sql, after=after_sql, shard=shard_sql)
    if agent_ids is not None and len(params[1]) == 1:
        with connection.cursor() as cursor:  # one agent: a small result, one round trip
            cursor.execute(sql, params)
            yield from cursor.fetchall()
        return
    # The whole log: a server-side cursor on the driver's connection, in a transaction
    # (Django's chunked cursor adds a measurable cost per row here).
    from psycopg.types.datetime import TimestamptzLoader

    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor(name=f"trust_rows_{uuid.uuid4().hex}") as cursor:
            # psycopg's own (C) timestamptz loader: Django's per-connection one is written in
            # Python and costs more than the rest of the row. The session is in UTC, so the
            # values are the same aware UTC datetimes.
            cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
            cursor.itersize = chunk_size
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(chunk_size):
                yield from rows


def trust_events(agent_id, after_seq: int = 0) -> list[reducer.Event]:
    """The agent's events the reducer consumes, after ``after_seq``, in log order."""
    return [
        _event(seq, event_id, *rest)
        for seq, _agent, event_id, *rest in _rows([agent_id], after_seq, 2000)
    ]


def shard_of(agent_id: str, count: int) -> int:
    """Which of ``count`` shards an agent's events go to (a parallel rebuild); the same
    arithmetic as the SQL: the first 28 bits of the UUID, modulo ``count``."""
    return int(str(agent_id)[:7], 16) % count


def stream_trust_events(
    agent_ids: Iterable | None = None,
    *,
    chunk_size: int = 5000,
    shard: tuple[int, int] | None = None,
) -> Iterator[tuple[str, reducer.Event]]:
    """Every consumed event of every agent (or of ``agent_ids``; or of one ``shard``
    ``(index, count)`` of the agents), in log order."""
    rows = _rows(agent_ids, 0, chunk_size, shard)
    try:
        for seq, agent_id, event_id, event_type, at, session, verdict, result, payload in rows:
            yield agent_id, _event(seq, event_id, event_type, at, session, verdict, result, payload)
    finally:
        rows.close()


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
