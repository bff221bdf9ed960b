"""Writing the event log: the one event writer, the integrator and checkpoints (SPEC §6).

``record()`` is the only code that creates ``GovernanceEvent`` rows. It must run inside the
transaction of the change it records, and costs the request one small insert pair: the
serial part (numbering, hashing, signing) is done by ``integrate_pending()`` after commit,
in batches, under a lock (DESIGN.md "The one serial point", design 2).

Who runs the integrator (``settings.WARDEN_INTEGRATOR``):
* ``inline`` (default): the process that committed runs it right after commit. Only one
  process integrates at a time (a try-lock); the others return at once and the holder
  re-checks the queue after releasing, so no event is stranded.
* ``process``: a dedicated ``manage.py run_integrator`` loop does it.
Either way ``sign_checkpoint_if_due`` (periodic) also drains the queue, so a crash between
commit and integration only delays an event's log fields.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import canonical
from .eventcodec import ZERO_HASH, event_leaf_hash
from .keys import keyring
from .merkle import Frontier
from .models import (
    Checkpoint,
    EventLogEntry,
    GovernanceEvent,
    PendingEvent,
    SessionEventCounter,
)
from .timefmt import format_timestamp

log = logging.getLogger("warden.audit")

# pg_advisory_xact_lock key of the log's serial point ("WARD").
INTEGRATION_LOCK = 0x57415244
BATCH_SIZE = 1000


def to_json_value(value: Any) -> Any:
    """Payload values as JSON: money as decimal strings, times as RFC 3339 (SPEC §6.2)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(to_json_value(v) for v in value)
    raise TypeError(f"{type(value).__name__} cannot be recorded in an event payload")


def _as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def record(
    event_type: str,
    *,
    actor: str,
    agent_id: Any = None,
    session_id: Any = None,
    workflow_id: str | None = None,
    run_id: Any = None,
    verdict: str | None = None,
    result: str = "success",
    reason: str = "",
    payload: Mapping[str, Any] | None = None,
) -> GovernanceEvent:
    """Record one governance event in the current transaction (SPEC §6).

    ``actor`` is ``agent:<id>``, ``user:<username>`` or ``system:<component>``. Events of a
    session are numbered (payload ``session_event``) so proofs can show none is missing.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record() must run inside the transaction it records")
    data = to_json_value(dict(payload or {}))
    session_uuid = _as_uuid(session_id)
    if session_uuid is not None:
        data["session_event"] = _next_session_event(session_uuid)
    event = GovernanceEvent(
        timestamp=timezone.now(),
        event_type=event_type,
        agent_id=_as_uuid(agent_id),
        session_id=session_uuid,
        workflow_id=workflow_id or None,
        run_id=_as_uuid(run_id),
        actor=actor,
        # Plain str values (not TextChoices members): the canonical form must be plain JSON.
        verdict=str(verdict) if verdict is not None else None,
        result=str(result),
        reason=str(reason or ""),
        payload_json=canonical.dumps(data).decode("utf-8"),
    )
    _insert(event)
    _integrate_after_commit()
    return event


_EVENT_COLUMNS = (
    "id",
    "timestamp",
    "event_type",
    "agent_id",
    "session_id",
    "workflow_id",
    "run_id",
    "actor",
    "verdict",
    "result",
    "reason",
    "payload_json",
)


def _insert(event: GovernanceEvent) -> None:
    """Insert the event and its pending marker with plain SQL.

    This runs for every governed action, so it skips the ORM's per-call query compilation
    (a measured 3-4x on this path); values are still prepared by the model's own fields.
    """
    meta = GovernanceEvent._meta
    values = [
        meta.get_field(name).get_db_prep_save(getattr(event, name), connection)
        for name in _EVENT_COLUMNS
    ]
    columns = ", ".join(_EVENT_COLUMNS)
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH e AS (INSERT INTO {meta.db_table} ({columns}) VALUES ({marks}) "
                "RETURNING arrival) "
                f"INSERT INTO {PendingEvent._meta.db_table} (event_id) SELECT arrival FROM e "
                "RETURNING event_id",
                values,
            )
            event.arrival = cursor.fetchone()[0]
        else:
            cursor.execute(
                f"INSERT INTO {meta.db_table} ({columns}) VALUES ({marks}) RETURNING arrival",
                values,
            )
            event.arrival = cursor.fetchone()[0]
            cursor.execute(
                f"INSERT INTO {PendingEvent._meta.db_table} (event_id) VALUES (%s)", [event.arrival]
            )
    event._state.adding = False
    event._state.db = connection.alias


def _integrate_after_commit() -> None:
    """Schedule one integration pass per transaction, however many events it records."""
    # Django keeps pending callbacks in connection.run_on_commit as (savepoint ids, func,
    # robust); a rolled-back savepoint removes its own, so "already there" means "will run".
    if any(func is _after_commit for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_after_commit)


def _next_session_event(session_id: uuid.UUID) -> int:
    table = SessionEventCounter._meta.db_table
    key = SessionEventCounter._meta.pk.get_db_prep_value(session_id, connection)
    with connection.cursor() as cursor:
        # One statement, so concurrent events of a session queue on the row lock.
        cursor.execute(
            f"INSERT INTO {table} (session_id, count) VALUES (%s, 1) "
            f"ON CONFLICT (session_id) DO UPDATE SET count = {table}.count + 1 "
            "RETURNING count",
            [key],
        )
        return cursor.fetchone()[0]


def _after_commit() -> None:
    if settings.WARDEN_INTEGRATOR != "inline":
        return  # a run_integrator process picks the event up
    try:
        integrate_pending()
    except Exception:  # the change is committed; the periodic job will integrate later
        log.exception("integrating the event log after commit failed")


# --- the integrator -------------------------------------------------------------------
def _try_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: the IMMEDIATE transaction already holds the write lock
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [INTEGRATION_LOCK])
        return bool(cursor.fetchone()[0])


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INTEGRATION_LOCK])


def integrate_pending(batch_size: int = BATCH_SIZE, *, wait: bool = False) -> int:
    """Append log fields to pending events in arrival order; returns how many.

    With ``wait=False`` it returns at once if another process is integrating (that one
    re-checks the queue after releasing the lock, so nothing is left behind).
    """
    total = 0
    while True:
        with transaction.atomic():
            if wait:
                _lock()
            elif not _try_lock():
                return total
            done = _integrate_batch(batch_size)
            if done:
                _checkpoint_if_due(by_count_only=True)
        total += done
        if done < batch_size and not PendingEvent.objects.exists():
            return total


def _integrate_batch(batch_size: int) -> int:
    pending = list(
        PendingEvent.objects.order_by("event_id").values_list("id", "event_id")[:batch_size]
    )
    if not pending:
        return 0
    events = GovernanceEvent.objects.in_bulk([event_id for _, event_id in pending])
    head = EventLogEntry.objects.order_by("-seq").values_list("seq", "leaf_hash").first()
    seq, prev_hash = head if head else (0, ZERO_HASH)
    signers = keyring().signers()
    entries = []
    for _, event_id in pending:
        event = events[event_id]
        seq += 1
        fields = event.content_fields()
        fields["seq"] = seq
        fields["prev_hash"] = prev_hash
        leaf = event_leaf_hash(fields, event.payload_json)
        key_id, private = signers.pick(event.timestamp)
        entries.append(
            EventLogEntry(
                seq=seq,
                event_id=event_id,
                prev_hash=prev_hash,
                leaf_hash=leaf.hex(),
                signature=base64.b64encode(private.sign(leaf)).decode(),
                key_id=key_id,
            )
        )
        prev_hash = leaf.hex()
    EventLogEntry.objects.bulk_create(entries)
    PendingEvent.objects.filter(id__in=[pending_id for pending_id, _ in pending]).delete()
    return len(entries)


# --- checkpoints ----------------------------------------------------------------------
def checkpoint_body(tree_size: int, root_hash: str, timestamp: str, key_id: str) -> bytes:
    """What a checkpoint signature covers (SPEC §6.3)."""
    return canonical.dumps(
        {"tree_size": tree_size, "root_hash": root_hash, "timestamp": timestamp, "key_id": key_id}
    )


def log_size() -> int:
    return EventLogEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-tree_size").first()


def _frontier_after(last: Checkpoint | None, size: int) -> Frontier:
    frontier = Frontier()
    if last is not None:
        frontier = Frontier.from_hex(last.tree_size, last.frontier)
        if frontier.root().hex() != last.root_hash:
            # The stored frontier is not signed; never sign a root built on a bad one.
            log.error("checkpoint %s frontier does not match its root", last.tree_size)
            frontier = Frontier()
    leaves = (
        EventLogEntry.objects.filter(seq__gt=frontier.size, seq__lte=size)
        .order_by("seq")
        .values_list("leaf_hash", flat=True)
    )
    for leaf in leaves.iterator(chunk_size=5000):
        frontier.append(bytes.fromhex(leaf))
    if frontier.size != size:
        raise RuntimeError(f"log has a gap below seq {size}; run verify_log")
    return frontier


def _sign_checkpoint_locked(size: int) -> Checkpoint:
    last = latest_checkpoint()
    frontier = _frontier_after(last, size)
    now = timezone.now()
    key_id, private = keyring().signer_for(now)
    root_hash = frontier.root().hex()
    body = checkpoint_body(size, root_hash, format_timestamp(now), key_id)
    return Checkpoint.objects.create(
        tree_size=size,
        root_hash=root_hash,
        timestamp=now,
        key_id=key_id,
        signature=base64.b64encode(private.sign(body)).decode(),
        frontier=frontier.to_hex(),
    )


def _checkpoint_if_due(*, by_count_only: bool = False) -> Checkpoint | None:
    """Sign a tree head if 1,000 events or ~60 s passed since the last one (SPEC §6.2).

    Must run while holding the integration lock (the log head is stable).
    """
    size = log_size()
    last = latest_checkpoint()
    done = last.tree_size if last else 0
    if size <= done:
        return None
    if size - done >= settings.WARDEN_CHECKPOINT_EVERY:
        return _sign_checkpoint_locked(size)
    if by_count_only:
        return None
    since = last.timestamp if last else _first_event_time()
    # The periodic job ticks every 5 s, so sign a little early to keep the 60 s bound.
    threshold = max(settings.WARDEN_CHECKPOINT_SECONDS - 5, 0)
    if since is None or (timezone.now() - since).total_seconds() >= threshold:
        return _sign_checkpoint_locked(size)
    return None


def _first_event_time():
    first = EventLogEntry.objects.filter(seq=1).select_related("event").first()
    return first.event.timestamp if first else None


def sign_checkpoint_if_due() -> Checkpoint | None:
    """Periodic job: drain the queue, then sign a checkpoint if one is due."""
    integrate_pending(wait=True)
    with transaction.atomic():
        _lock()
        return _checkpoint_if_due()


def sign_checkpoint() -> Checkpoint | None:
    """Sign a checkpoint over the whole log now (``manage.py checkpoint``, proofs).

    Returns the latest checkpoint unchanged when it already covers every event.
    """
    integrate_pending(wait=True)
    with transaction.atomic():
        _lock()
        size = log_size()
        last = latest_checkpoint()
        if size == 0 or (last is not None and last.tree_size == size):
            return last
        return _sign_checkpoint_locked(size)


def integration_lag() -> dict:
    """How far the integrator is behind (shown in the console)."""
    oldest = PendingEvent.objects.order_by("event_id").select_related("event").first()
    return {
        "pending": PendingEvent.objects.count(),
        "oldest_seconds": (
            (timezone.now() - oldest.event.timestamp).total_seconds() if oldest else 0.0
        ),
    }
