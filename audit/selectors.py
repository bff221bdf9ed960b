"""Reads of the event log shared by the console, the API and the commands."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from django.db.models import QuerySet

from .logcheck import Row
from .models import Checkpoint, EventLogEntry, GovernanceEvent
from .timefmt import format_timestamp

_PG_ROWS = """
SELECT l.seq, l.prev_hash, l.leaf_hash, l.signature, l.key_id, e.id::text,
       to_char(e.timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       e.event_type, e.agent_id::text, e.session_id::text, e.workflow_id, e.run_id::text,
       e.actor, e.verdict, e.result, e.reason, e.payload_json
FROM audit_eventlogentry l JOIN audit_governanceevent e ON e.arrival = l.event_arrival
WHERE l.seq >= %s ORDER BY l.seq
"""


def log_rows(chunk_size: int = 5000, *, start: int = 1) -> Iterator[Row]:
    """Every integrated event in seq order, as the log checker wants it.

    Streams with plain SQL: this reads every event of the log, so it skips model
    instances. On PostgreSQL the database formats UUIDs and timestamps exactly as the
    canonical form needs them; on SQLite they are formatted here.
    """
    if connection.vendor == "postgresql":
        with connection.chunked_cursor() as cursor:
            cursor.execute(_PG_ROWS, [start])
            while rows := cursor.fetchmany(chunk_size):
                for row in rows:
                    yield _row(row)
        return
    fields = (
        "seq",
        "prev_hash",
        "leaf_hash",
        "signature",
        "key_id",
        "event__id",
        "event__timestamp",
        "event__event_type",
        "event__agent_id",
        "event__session_id",
        "event__workflow_id",
        "event__run_id",
        "event__actor",
        "event__verdict",
        "event__result",
        "event__reason",
        "event__payload_json",
    )
    queryset = EventLogEntry.objects.filter(seq__gte=start).order_by("seq").values_list(*fields)
    for row in queryset.iterator(chunk_size=chunk_size):
        event_id, timestamp, agent_id, session_id, run_id = row[5], row[6], row[8], row[9], row[11]
        yield _row(
            (
                *row[:5],
                str(event_id),
                format_timestamp(timestamp),
                row[7],
                str(agent_id) if agent_id else None,
                str(session_id) if session_id else None,
                row[10],
                str(run_id) if run_id else None,
                *row[12:],
            )
        )


def _row(values) -> Row:
    (
        seq,
        prev_hash,
        leaf,
        signature,
        key_id,
        event_id,
        timestamp,
        event_type,
        agent_id,
        session_id,
        workflow_id,
        run_id,
        actor,
        verdict,
        result,
        reason,
        payload_text,
    ) = values
    return Row(
        seq=seq,
        content={
            "id": event_id,
            "timestamp": timestamp,
            "event_type": event_type,
            "agent_id": agent_id,
            "session_id": session_id,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "actor": actor,
            "verdict": verdict,
            "result": result,
            "reason": reason,
        },
        payload_text=payload_text,
        prev_hash=prev_hash,
        leaf_hash=leaf,
        signature=signature,
        key_id=key_id,
    )


def checkpoints() -> list[dict]:
    return [c.as_json() for c in Checkpoint.objects.order_by("tree_size")]


def event_document(event: GovernanceEvent) -> dict:
    """An event as APIs and exports present it: §6.1 fields, log fields when integrated."""
    entry = getattr(event, "log", None) if _has_log(event) else None
    document = {
        "seq": entry.seq if entry else None,
        **event.content_fields(),
        "payload": event.payload,
        "prev_hash": entry.prev_hash if entry else None,
        "leaf_hash": entry.leaf_hash if entry else None,
        "signature": entry.signature if entry else None,
        "key_id": entry.key_id if entry else None,
    }
    return document


def _has_log(event: GovernanceEvent) -> bool:
    try:
        event.log  # noqa: B018 - touch the reverse one-to-one
    except EventLogEntry.DoesNotExist:
        return False
    return True


def events_for(**filters) -> QuerySet[GovernanceEvent]:
    return GovernanceEvent.objects.filter(**filters).select_related("log").order_by("arrival")
