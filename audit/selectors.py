"""Reads of the event log shared by the console, the API and the commands."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, F, Func, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from .filters import LogFilter
from .logcheck import Row
from .models import Checkpoint, EventLogEntry, GovernanceEvent
from .timefmt import format_timestamp

# An event's content as ``values_list`` lookups from a row that points at it (``event``), in
# ``logcheck.ROW_FIELDS`` order: what the integrator hashes and ``verify_log`` re-checks.
EVENT_CONTENT_LOOKUPS = (
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

_PG_ROWS = """
SELECT l.seq, l.prev_hash, l.leaf_hash, l.signature, l.key_id, e.id::text,
       to_char(e.timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       e.event_type, e.agent_id::text, e.session_id::text, e.workflow_id, e.run_id::text,
       e.actor, e.verdict, e.result, e.reason, e.payload_json
FROM audit_eventlogentry l JOIN audit_governanceevent e ON e.arrival = l.event_arrival
WHERE l.seq >= %s ORDER BY l.seq
"""


def log_batches(chunk_size: int = 10_000, *, start: int = 1) -> Iterator[list[tuple]]:
    """Every integrated event in seq order, as lists of ``logcheck.ROW_FIELDS`` tuples.

    Streams with plain SQL (a server-side cursor on PostgreSQL): this reads every event of
    the log, so it makes no model instance and no per-row object beyond the tuple. On
    PostgreSQL the database formats UUIDs and timestamps exactly as the canonical form
    needs them; on SQLite they are formatted here.
    """
    if connection.vendor == "postgresql":
        with connection.chunked_cursor() as cursor:
            cursor.execute(_PG_ROWS, [start])
            while rows := cursor.fetchmany(chunk_size):
                yield rows
        return
    fields = ("seq", "prev_hash", "leaf_hash", "signature", "key_id", *EVENT_CONTENT_LOOKUPS)
    queryset = EventLogEntry.objects.filter(seq__gte=start).order_by("seq").values_list(*fields)
    batch = []
    for row in queryset.iterator(chunk_size=chunk_size):
        event_id, timestamp, agent_id, session_id, run_id = row[5], row[6], row[8], row[9], row[11]
        batch.append(
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
        if len(batch) >= chunk_size:
            yield batch
            batch = []
    if batch:
        yield batch


def log_rows(chunk_size: int = 5000, *, start: int = 1) -> Iterator[Row]:
    """Every integrated event in seq order, as ``logcheck.Row`` objects."""
    for batch in log_batches(chunk_size, start=start):
        for row in batch:
            yield _row(row)


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


# --- the audit log page ---------------------------------------------------------------
@dataclass
class LogPage:
    events: list[GovernanceEvent]
    older: int | None  # cursor: ?before=<arrival> for the next page of older events
    newer: int | None  # cursor: ?after=<arrival> for the page of newer events


def log_page(
    flt: LogFilter, *, before: int | None = None, after: int | None = None, limit: int = 50
) -> LogPage:
    """One page of the filtered log, newest first, keyset-paginated (no OFFSET).

    Pages go by arrival (the log's order). With a date range they go by time, then arrival:
    events are stored in time order, so "the 50 newest before 04:00" is a short walk of the
    time index from 04:00 down, where paging by arrival would make PostgreSQL walk back from
    the newest event in the whole log until it reaches the window (measured: 0.5–2.5 s at a
    million events). Cursors are arrivals either way.
    """
    events = flt.apply(GovernanceEvent.objects.select_related("log"))
    timed = flt.start is not None or flt.end is not None
    newest_first = ("-timestamp", "-arrival") if timed else ("-arrival",)
    oldest_first = ("timestamp", "arrival") if timed else ("arrival",)
    if after is not None:
        rows = list(_past(events, after, timed, older=False).order_by(*oldest_first)[: limit + 1])
        more_newer = len(rows) > limit
        rows = rows[:limit][::-1]
        return LogPage(
            rows,
            older=rows[-1].arrival if rows else None,
            newer=rows[0].arrival if rows and more_newer else None,
        )
    if before is not None:
        events = _past(events, before, timed, older=True)
    rows = list(events.order_by(*newest_first)[: limit + 1])
    more_older = len(rows) > limit
    rows = rows[:limit]
    return LogPage(
        rows,
        older=rows[-1].arrival if rows and more_older else None,
        newer=rows[0].arrival if rows and before is not None else None,
    )


def _past(events: QuerySet, cursor: int, timed: bool, *, older: bool) -> QuerySet:
    """Events strictly older (or newer) than the cursor event, in the page's order."""
    if not timed:
        return events.filter(arrival__lt=cursor) if older else events.filter(arrival__gt=cursor)
    moment = GovernanceEvent.objects.filter(arrival=cursor).values_list("timestamp", flat=True)
    moment = moment.first()
    if moment is None:
        return events.none()
    # A row comparison, so the (timestamp, arrival) index serves it on both databases.
    operator = "<" if older else ">"
    table = GovernanceEvent._meta.db_table
    condition = RawSQL(
        f'("{table}"."timestamp", "{table}"."arrival") {operator} (%s, %s)',
        [connection.ops.adapt_datetimefield_value(moment), cursor],
        output_field=BooleanField(),
    )
    return events.filter(condition)


def covering_checkpoint_of(seq: int) -> Checkpoint | None:
    """The first checkpoint whose tree holds ``seq`` (None: not covered yet)."""
    return Checkpoint.objects.filter(tree_size__gte=seq).order_by("tree_size").first()


# --- exports --------------------------------------------------------------------------
class _ToChar(Func):
    # The canonical timestamp form (audit/timefmt.py), formatted by PostgreSQL.
    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    output_field = TextField()


def _sqlite_payload_path(*path: str) -> RawSQL:
    column = '"audit_governanceevent"."payload_json"'
    return RawSQL(f"json_extract({column}, '$.{'.'.join(path)}')", [], output_field=TextField())


# PostgreSQL parses each payload once, and only those of action.evaluated (canonical JSON
# sorts keys, so only they start with an "action" object); OFFSET 0 keeps the inner query
# from being flattened into four parses per row. The subquery scans keep the inner query's
# seq order (an outer ORDER BY would sort the whole export a second time).
_PG_DERIVED = """
SELECT {columns}, t.a ->> 'name', t.a ->> 'target', t.a ->> 'amount', t.a ->> 'currency'
FROM (SELECT s.*, CASE WHEN s.c_payload LIKE '{{"action":{{%%'
                       THEN (s.c_payload::jsonb -> 'action') END AS a
      FROM ({inner}) s OFFSET 0) t
"""


def export_queryset(flt: LogFilter, up_to_seq: int) -> QuerySet:
    """The rows of an export in ``exportformat.COLUMNS`` order, in seq order.

    Only integrated events (they have a seq, a signature and a place under a checkpoint);
    the export service drains the integrator first, so that leaves out nothing recorded
    before the export started.
    """
    vendor = connection.vendor
    pg = vendor == "postgresql"
    text = TextField()

    def uuid_text(name: str):
        return Cast(name, text) if pg else F(name)

    columns = {
        "c_seq": F("log__seq"),
        "c_id": uuid_text("id"),
        "c_timestamp": _ToChar(F("timestamp")) if pg else F("timestamp"),
        "c_event_type": F("event_type"),
        "c_agent_id": uuid_text("agent_id"),
        "c_session_id": uuid_text("session_id"),
        "c_workflow_id": F("workflow_id"),
        "c_run_id": uuid_text("run_id"),
        "c_actor": F("actor"),
        "c_verdict": F("verdict"),
        "c_result": F("result"),
        "c_reason": F("reason"),
        "c_payload": F("payload_json"),
        "c_prev_hash": F("log__prev_hash"),
        "c_leaf_hash": F("log__leaf_hash"),
        "c_signature": F("log__signature"),
        "c_key_id": F("log__key_id"),
    }
    if not pg:  # PostgreSQL adds them around the query (export_batches)
        for name in ("name", "target", "amount", "currency"):
            columns[f"c_{name}"] = _sqlite_payload_path("action", name)
    events = flt.apply(GovernanceEvent.objects.all()).filter(log__seq__lte=up_to_seq)
    return events.annotate(**columns).order_by("log__seq").values_list(*columns)


def export_batches(flt: LogFilter, up_to_seq: int, *, size: int = 2000) -> Iterator[list[tuple]]:
    """The export's rows in batches, streamed from the database with constant memory.

    PostgreSQL formats every value in SQL and a server-side cursor hands over ``size`` rows
    at a time, so Python only writes them; on SQLite UUIDs and times are formatted here.
    """
    queryset = export_queryset(flt, up_to_seq)
    if connection.vendor == "postgresql":
        inner, params = queryset.query.sql_with_params()
        columns = ", ".join(f"t.{name}" for name in queryset.query.annotation_select)
        with connection.chunked_cursor() as cursor:
            cursor.execute(_PG_DERIVED.format(columns=columns, inner=inner), params)
            while rows := cursor.fetchmany(size):
                yield rows
        return
    batch: list[tuple] = []
    for row in queryset.iterator(chunk_size=size):
        batch.append(_sqlite_row(row))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _sqlite_row(row: tuple) -> tuple:
    values = list(row)
    for index in (1, 4, 5, 7):
        if values[index] is not None:
            values[index] = str(values[index])
    values[2] = format_timestamp(values[2])
    for index in (17, 18, 19, 20):  # json_extract returns numbers as numbers
        if values[index] is not None and not isinstance(values[index], str):
            values[index] = str(values[index])
    return tuple(values)


def with_agent_names(events: list[GovernanceEvent]) -> list[GovernanceEvent]:
    """Set ``agent_name`` on each event of a page (one query for all of them)."""
    from console.models import Agent

    ids = {event.agent_id for event in events if event.agent_id}
    names = dict(Agent.objects.filter(pk__in=ids).values_list("id", "name")) if ids else {}
    for event in events:
        event.agent_name = names.get(event.agent_id, "")
    return events
