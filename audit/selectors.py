"""Reads of the event log shared by the console, the API and the commands."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from .logcheck import Row
from .models import Checkpoint, EventLogEntry, GovernanceEvent

_ROW_FIELDS = (
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


def log_rows(chunk_size: int = 5000, *, start: int = 1) -> Iterator[Row]:
    """Every integrated event in seq order, as the log checker wants it."""
    from .timefmt import format_timestamp

    queryset = (
        EventLogEntry.objects.filter(seq__gte=start).order_by("seq").values_list(*_ROW_FIELDS)
    )
    for (
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
    ) in queryset.iterator(chunk_size=chunk_size):
        yield Row(
            seq=seq,
            content={
                "id": str(event_id),
                "timestamp": format_timestamp(timestamp),
                "event_type": event_type,
                "agent_id": str(agent_id) if agent_id else None,
                "session_id": str(session_id) if session_id else None,
                "workflow_id": workflow_id,
                "run_id": str(run_id) if run_id else None,
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
