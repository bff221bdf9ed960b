"""Writing the event log: the one event writer, the integrator and checkpoints (SPEC §6).

``record()`` is the only code that creates ``GovernanceEvent`` rows. It must run inside the
transaction of the change it records, and costs the request one small insert pair: the
serial part (numbering, hashing, signing) is done by ``integrate_pending()`` after commit,
in batches, under a lock (DESIGN.md "The one serial point", design 2).

Who runs the integrator (``settings.WARDEN_INTEGRATOR``):
* ``thread`` (default on PostgreSQL): a background thread of the process that committed
  (``BackgroundIntegrator``), woken after commit; the request does not wait for it.
* ``inline`` (default on SQLite, and in the test suite): the process that committed runs it
  right after commit, before the request returns.
* ``process``: a dedicated ``manage.py run_integrator`` loop does it.
Only one process integrates at a time (a PostgreSQL advisory lock). Inline, the others
try the lock and return at once; the holder re-checks the queue after releasing, so no
event is stranded. The threads wait for the lock and take the next batch in turn.
A pass is one read (the pending events with their content, the log head and the latest
checkpoint's size) and one write per batch of up to ``BATCH_SIZE`` events; after the
pass that crosses every ``search.MERGE_EVERY`` events, the search index's pending entries
are merged (``audit.search``), outside the lock.
Either way ``sign_checkpoint_if_due`` (periodic) also drains the queue, so a crash between
commit and integration only delays an event's log fields.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from console.errors import Invalid

from . import canonical, search
from .eventcodec import ZERO_HASH, content_leaf
from .keys import keyring, signing_function
from .merkle import Frontier
from .models import (
    Checkpoint,
    EventLogEntry,
    Export,
    GovernanceEvent,
    PendingEvent,
    SessionEventCounter,
)
from .selectors import EVENT_CONTENT_LOOKUPS
from .timefmt import format_timestamp, parse_timestamp

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
    event_id: uuid.UUID | None = None,
    also: Sequence[tuple[str, list]] = (),
) -> GovernanceEvent:
    """Record one governance event in the current transaction (SPEC §6).

    ``actor`` is ``agent:<id>``, ``user:<username>`` or ``system:<component>``. Events of a
    session are numbered (payload ``session_event``) so proofs can show none is missing.
    ``also``: the caller's writes of rows that go with the event (``(sql, params)``, they
    may name it by ``event_id``, which the caller then chooses), sent with the event's
    insert in one round trip where the connection allows (the governed-action path).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record() must run inside the transaction it records")
    data = to_json_value(dict(payload or {}))
    session_uuid = _as_uuid(session_id)
    if session_uuid is not None:
        data["session_event"] = _next_session_event(session_uuid)
    event = GovernanceEvent(
        id=event_id or uuid.uuid4(),
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
    _insert(event, also)
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


def client_side_binding() -> bool:
    """PostgreSQL with Django's default client-side binding: statements without results
    can follow a statement in the same query, so they take one round trip."""
    options = connection.settings_dict.get("OPTIONS", {})
    return connection.vendor == "postgresql" and not options.get("server_side_binding")


def _insert(event: GovernanceEvent, also: Sequence[tuple[str, list]] = ()) -> None:
    """Insert the event and its pending marker with plain SQL, then the ``also`` writes.

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
            together = list(also) if client_side_binding() else []
            cursor.execute(
                "; ".join(
                    [
                        f"WITH e AS (INSERT INTO {meta.db_table} ({columns}) VALUES ({marks}) "
                        "RETURNING arrival) "
                        f"INSERT INTO {PendingEvent._meta.db_table} (event_id) "
                        "SELECT arrival FROM e RETURNING event_id",
                        *(sql for sql, _ in together),
                    ]
                ),
                [*values, *(value for _, params in together for value in params)],
            )
            event.arrival = cursor.fetchone()[0]  # the first statement's result
            also = [] if together else also
        else:
            cursor.execute(
                f"INSERT INTO {meta.db_table} ({columns}) VALUES ({marks}) RETURNING arrival",
                values,
            )
            event.arrival = cursor.fetchone()[0]
            cursor.execute(
                f"INSERT INTO {PendingEvent._meta.db_table} (event_id) VALUES (%s)", [event.arrival]
            )
        for sql, params in also:
            cursor.execute(sql, params)
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
    mode = settings.WARDEN_INTEGRATOR
    if mode == "thread":
        background_integrator.wake()
    elif mode == "inline":
        try:
            integrate_pending()
        except Exception:  # the change is committed; the periodic job will integrate later
            log.exception("integrating the event log after commit failed")
    # "process": a run_integrator process picks the event up


class BackgroundIntegrator:
    """``WARDEN_INTEGRATOR=thread``: one daemon thread per process integrates the log.

    A commit only wakes the thread, so the request that recorded an event does not wait
    for the serial point; events committed while a pass runs are taken by the next pass,
    so under load one integration transaction numbers and signs many events. The thread
    starts on the first wake. A failed pass is retried a second later (the periodic
    ``sign_checkpoint_if_due`` drains the queue too, so nothing waits on this thread
    alone).
    """

    RETRY_DELAY = 1.0

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wanted.set()
        if self._thread is None or not self._thread.is_alive():
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="warden-integrator", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                # Wait for the lock rather than try it: when another process's thread holds
                # it, this one takes the next batch as soon as it is released, instead of
                # spinning on try-lock transactions (one per commit it is woken by).
                integrate_pending(wait=True)
            except Exception:
                log.exception("background integration pass failed; retrying")
                time.sleep(self.RETRY_DELAY)
                self._wanted.set()
            finally:
                close_old_connections()


background_integrator = BackgroundIntegrator()


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
    re-checks the queue after releasing the lock, so nothing is left behind). With
    ``wait=True`` a pass that finds less than a full batch has taken every event committed
    before it began, so it returns without re-checking; anyone who committed during it has
    woken (or is) a waiter of its own.
    """
    total = 0
    while True:
        with transaction.atomic():
            if wait:
                _lock()
            elif not _try_lock():
                return total
            size, leaves, checkpointed = _integrate_batch(batch_size)
            done = len(leaves)
            if done and size - checkpointed >= settings.WARDEN_CHECKPOINT_EVERY:
                _checkpoint_if_due(by_count_only=True, size=size, recent=leaves)
        total += done
        if done:
            search.merge_pending_if_due(size - done, size)
        if done < batch_size and (wait or not PendingEvent.objects.exists()):
            return total


# One query for a batch of pending events, as the values the canonical form takes, with
# the log head and the size of the latest checkpoint on every row (each a single index
# probe: under load every round trip of a pass is a wait for the GIL too). On
# PostgreSQL the database formats UUIDs and timestamps as the canonical form spells them
# (the same SQL verify_log reads the log with, audit.selectors); on SQLite Python does.
_PG_PENDING = """
SELECT p.id, e.arrival, e.id::text,
       to_char(e.timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       e.event_type, e.agent_id::text, e.session_id::text, e.workflow_id, e.run_id::text,
       e.actor, e.verdict, e.result, e.reason, e.payload_json,
       (SELECT seq FROM audit_eventlogentry ORDER BY seq DESC LIMIT 1),
       (SELECT leaf_hash FROM audit_eventlogentry ORDER BY seq DESC LIMIT 1),
       (SELECT max(tree_size) FROM audit_checkpoint)
FROM audit_pendingevent p JOIN audit_governanceevent e ON e.arrival = p.event_id
ORDER BY p.event_id LIMIT %s
"""
# The whole write of a batch is one statement: insert the log entries (the log-entry table
# is insert-only; its triggers refuse UPDATE and DELETE) and drop the pending markers.
_PG_APPEND = """
WITH taken AS (DELETE FROM audit_pendingevent WHERE id = ANY(%s::bigint[]))
INSERT INTO audit_eventlogentry (seq, event_arrival, prev_hash, leaf_hash, signature, key_id)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])
"""
_PENDING_FIELDS = ("id", "event_id", *EVENT_CONTENT_LOOKUPS)


def _pending_rows(batch_size: int) -> list[tuple]:
    """(pending id, arrival, the §6.1 content fields as strings, payload text, head seq,
    head leaf hash, latest checkpoint size); the last three are None on an empty log."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PG_PENDING, [batch_size])
            return cursor.fetchall()
    rows = PendingEvent.objects.order_by("event_id").values_list(*_PENDING_FIELDS)[:batch_size]
    if not rows:
        return []
    head = EventLogEntry.objects.order_by("-seq").values_list("seq", "leaf_hash").first()
    log = (*(head or (None, None)), latest_checkpoint_size())
    out = []
    for row in rows:
        pending_id, arrival, event_id, timestamp, event_type, agent_id, session_id = row[:7]
        workflow_id, run_id = row[7:9]
        out.append(
            (
                pending_id,
                arrival,
                str(event_id),
                format_timestamp(timestamp),
                event_type,
                str(agent_id) if agent_id else None,
                str(session_id) if session_id else None,
                workflow_id,
                str(run_id) if run_id else None,
                *row[9:],
                *log,
            )
        )
    return out


_ARRAY_SAFE = re.compile(r"[0-9A-Za-z+/=,]*")


def _pg_array(values: list) -> str | list:
    """A PostgreSQL array literal of numbers, hex or base64 text, which need no quoting.

    psycopg quotes list elements one by one in Python (a regex per element); joining is
    ~20x cheaper. Anything outside that alphabet is passed as a list, quoted by psycopg.
    """
    text = ",".join(map(str, values))
    return "{" + text + "}" if _ARRAY_SAFE.fullmatch(text) else values


def _append(pending_ids: list[int], entries: list[tuple]) -> None:
    """Insert the batch's log entries and delete its pending markers, in this transaction."""
    table = EventLogEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = [pending_ids, *map(list, zip(*entries, strict=True))]
            cursor.execute(_PG_APPEND, [_pg_array(column) for column in columns])
            return
        cursor.executemany(
            f"INSERT INTO {table} (seq, event_arrival, prev_hash, leaf_hash, signature, key_id) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            entries,
        )
        cursor.executemany(
            f"DELETE FROM {PendingEvent._meta.db_table} WHERE id = %s",
            [(pending_id,) for pending_id in pending_ids],
        )


def _integrate_batch(batch_size: int) -> tuple[int, list[bytes], int]:
    """Number, chain, hash and sign one batch; returns the new log size, its leaves and the
    size of the latest checkpoint."""
    rows = _pending_rows(batch_size)
    if not rows:
        return 0, [], 0
    head_seq, head_leaf, checkpointed = rows[0][-3:]
    seq, prev_hash = (head_seq, head_leaf) if head_seq is not None else (0, ZERO_HASH)
    signers = keyring().signers()
    # Timestamps are fixed-width RFC 3339 UTC text, so text order is time order.
    stamps = [row[3] for row in rows]
    one_key = signers.pick_range(parse_timestamp(min(stamps)), parse_timestamp(max(stamps)))
    b64 = base64.b64encode
    signing_functions: dict[str, Callable[[bytes], bytes]] = {}
    pending_ids = []
    entries = []
    leaves = []
    for row in rows:
        pending_id, arrival, timestamp = row[0], row[1], row[3]
        seq += 1
        leaf = content_leaf(seq, prev_hash, row[2:14])
        key_id, private = one_key or signers.pick(parse_timestamp(timestamp))
        sign = signing_functions.get(key_id) or signing_functions.setdefault(
            key_id, signing_function(private)
        )
        leaf_hex = leaf.hex()
        pending_ids.append(pending_id)
        entries.append((seq, arrival, prev_hash, leaf_hex, b64(sign(leaf)).decode(), key_id))
        leaves.append(leaf)
        prev_hash = leaf_hex
    _append(pending_ids, entries)
    return seq, leaves, checkpointed or 0


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


def latest_checkpoint_size() -> int | None:
    return Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first()


def _frontier_after(
    last: Checkpoint | None, size: int, recent: list[bytes] | None = None
) -> Frontier:
    """The tree over leaves 1..size, extending ``last``'s frontier.

    ``recent`` are the leaf hashes of the events just integrated (the last ones up to
    ``size``, in this transaction): only the leaves before them are read back.
    """
    recent = recent or []
    first_recent = size - len(recent) + 1
    frontier = Frontier()
    if last is not None:
        frontier = Frontier.from_hex(last.tree_size, last.frontier)
        if frontier.root().hex() != last.root_hash:
            # The stored frontier is not signed; never sign a root built on a bad one.
            log.error("checkpoint %s frontier does not match its root", last.tree_size)
            frontier = Frontier()
    if frontier.size < first_recent - 1:
        leaves = (
            EventLogEntry.objects.filter(seq__gt=frontier.size, seq__lt=first_recent)
            .order_by("seq")
            .values_list("leaf_hash", flat=True)
        )
        for leaf in leaves.iterator(chunk_size=5000):
            frontier.append(bytes.fromhex(leaf))
    if frontier.size >= first_recent - 1:
        frontier.extend(recent[frontier.size - first_recent + 1 :])
    if frontier.size != size:
        raise RuntimeError(f"log has a gap below seq {size}; run verify_log")
    return frontier


def _sign_checkpoint_locked(
    size: int, last: Checkpoint | None = None, recent: list[bytes] | None = None
) -> Checkpoint:
    last = last or latest_checkpoint()
    frontier = _frontier_after(last, size, recent)
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


def _checkpoint_if_due(
    *, by_count_only: bool = False, size: int | None = None, recent: list[bytes] | None = None
) -> Checkpoint | None:
    """Sign a tree head if 1,000 events or ~60 s passed since the last one (SPEC §6.2).

    Must run while holding the integration lock (the log head is stable). The integrator
    passes the log ``size`` it just wrote and the ``recent`` leaves it appended.
    """
    if size is None:
        size = log_size()
    last = latest_checkpoint()
    done = last.tree_size if last else 0
    if size <= done:
        return None
    if size - done >= settings.WARDEN_CHECKPOINT_EVERY:
        return _sign_checkpoint_locked(size, last, recent)
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


# --- exports (SPEC §7) ----------------------------------------------------------------
EXPORT_BATCH = 2000  # rows read from the database (and written) at a time
EXPORT_PROGRESS_EVERY = 5000  # rows between two progress updates of a task export
EXPORT_STALE_SECONDS = 300  # default of settings.WARDEN_EXPORT_STALE_SECONDS


def _export_stale_seconds() -> float:
    """A running task export silent this long may be claimed again."""
    return getattr(settings, "WARDEN_EXPORT_STALE_SECONDS", EXPORT_STALE_SECONDS)


def start_export(flt, fmt: str, *, by) -> Export:
    """Register an export of the filtered log and decide how it runs.

    The integrator is drained first and the export fixed to the log as it then is
    (``up_to_seq``): exports hold integrated events only, so every row has its seq and
    signature and sits under a checkpoint; an event recorded while an export runs is in the
    next one. Up to ``WARDEN_EXPORT_ASYNC_ROWS`` rows the export is delivered in the
    response (``streamed``); above, the ``audit.export_events`` task writes it to a file.
    """
    if fmt not in Export.Format.values:
        raise Invalid("Unknown export format.", fields={"format": ["csv or xlsx."]})
    integrate_pending(wait=True)
    up_to = log_size()
    rows = flt.apply(GovernanceEvent.objects.all()).filter(log__seq__lte=up_to).count()
    direct = rows <= settings.WARDEN_EXPORT_ASYNC_ROWS
    now = timezone.now()
    with transaction.atomic():
        export = Export.objects.create(
            format=fmt,
            filters=flt.as_params(),
            status=Export.Status.RUNNING if direct and fmt == "csv" else Export.Status.QUEUED,
            streamed=direct,
            up_to_seq=up_to,
            rows_total=rows,
            file_name=f"warden-events-{now:%Y%m%dT%H%M%SZ}.{fmt}",
            created_by=by,
        )
        if not direct:
            from .tasks import export_events

            export_id = str(export.id)
            transaction.on_commit(lambda: export_events.delay(export_id))
    return export


def export_path(export: Export) -> Path:
    return Path(settings.WARDEN_EXPORT_DIR) / f"{export.id}.{export.format}"


class _Rows:
    """Counts the rows going by and keeps the first and last seq."""

    def __init__(self, batches, on_progress=None) -> None:
        self.batches = batches
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.on_progress = on_progress

    def __iter__(self):
        reported = 0
        for batch in self.batches:
            if batch:
                if self.first is None:
                    self.first = batch[0][0]
                self.last = batch[-1][0]
                self.count += len(batch)
            yield batch
            if self.on_progress and self.count - reported >= EXPORT_PROGRESS_EVERY:
                reported = self.count
                self.on_progress(self.count)


def stream_csv(export: Export) -> CsvStream:
    return CsvStream(export)


class CsvStream:
    """The CSV bytes of a direct export, chunk by chunk; records ``export.created`` when the
    last chunk has gone, or a failed one if the download stopped (also before it began:
    a plain generator closed before its first ``next`` would run no cleanup)."""

    def __init__(self, export: Export) -> None:
        self.export = export
        self._chunks = self._run()
        self._started = False

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        self._started = True
        return next(self._chunks)

    def close(self) -> None:
        if not self._started:
            self._started = True
            fail_export(self.export.id, "the download stopped before the first row", rows=_Rows([]))
        self._chunks.close()

    def _run(self):
        from . import exportformat, selectors
        from .filters import LogFilter

        export = self.export
        flt = LogFilter.parse(export.filters)
        digest = exportformat.Digest()
        rows = _Rows(selectors.export_batches(flt, export.up_to_seq, size=EXPORT_BATCH))
        done = False
        try:
            yield from exportformat.csv_chunks(rows, digest)
            done = True
        finally:
            if done:
                finish_export(export.id, rows, sha256=digest.hexdigest(), size=digest.size)
            else:
                fail_export(export.id, f"the download stopped after {rows.count} rows", rows=rows)


def run_export(export_id) -> Export | None:
    """Write an export to its file (the ``audit.export_events`` task, and small .xlsx).

    Claims the export with a conditional update (queued → running, or running but silent
    for ``WARDEN_EXPORT_STALE_SECONDS``: the worker died and the task was redelivered), so
    two workers never write the same export. Returns None when there was nothing to claim
    (:func:`export_takeover_in` says whether to try again, and when).
    """
    from . import exportformat, selectors
    from .filters import LogFilter

    stale = timezone.now() - dt.timedelta(seconds=_export_stale_seconds())
    claimed = Export.objects.filter(
        Q(status=Export.Status.QUEUED) | Q(status=Export.Status.RUNNING, updated_at__lt=stale),
        pk=export_id,
    ).update(status=Export.Status.RUNNING, rows_done=0, updated_at=timezone.now())
    if not claimed:
        return None
    export = Export.objects.get(pk=export_id)
    path = export_path(export)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")

    def progress(count: int) -> None:
        Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
            rows_done=count, updated_at=timezone.now()
        )

    batches = selectors.export_batches(
        LogFilter.parse(export.filters), export.up_to_seq, size=EXPORT_BATCH
    )
    rows = _Rows(batches, progress)
    try:
        if export.format == Export.Format.CSV:
            digest = exportformat.Digest()
            with open(partial, "wb") as handle:
                for chunk in exportformat.csv_chunks(rows, digest):
                    handle.write(chunk)
            sha256, size = digest.hexdigest(), digest.size
        else:
            writer = exportformat.XlsxWriter(str(partial))
            for batch in rows:
                writer.write_rows(batch)
            sha256 = writer.close()
            size = partial.stat().st_size
        os.replace(partial, path)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        fail_export(export.id, f"{type(exc).__name__}: {exc}", rows=rows)
        raise
    finish_export(export.id, rows, sha256=sha256, size=size)
    return Export.objects.get(pk=export.pk)


def export_takeover_in(export_id) -> float | None:
    """Seconds until a running export counts as abandoned and :func:`run_export` may claim
    it; None when it is not running (done, failed, or gone).

    A task redelivered after its worker died finds the export still ``running``, its last
    progress only moments old; it waits this long and claims it then (or finds it done, if
    the first worker was alive after all)."""
    updated = (
        Export.objects.filter(pk=export_id, status=Export.Status.RUNNING)
        .values_list("updated_at", flat=True)
        .first()
    )
    if updated is None:
        return None
    due = updated + dt.timedelta(seconds=_export_stale_seconds())
    return max(0.0, (due - timezone.now()).total_seconds())


def _manifest(export: Export, rows: _Rows, *, sha256: str | None, size: int) -> dict:
    from . import exportformat, selectors

    checkpoint = None
    if rows.last is not None:
        covering = selectors.covering_checkpoint_of(rows.last) or sign_checkpoint()
        checkpoint = covering.as_json() if covering else None
    return {
        "export_id": str(export.id),
        "format": export.format,
        "file_name": export.file_name,
        "filters": export.filters,
        "integrated_only": True,
        "up_to_seq": export.up_to_seq,
        "row_count": rows.count,
        "first_seq": rows.first,
        "last_seq": rows.last,
        "columns": list(exportformat.COLUMNS),
        "sha256": sha256,
        "bytes": size,
        "checkpoint": checkpoint,
        "created_by": export.created_by.get_username(),
        "created_at": format_timestamp(export.created_at),
        "finished_at": format_timestamp(timezone.now()),
    }


def finish_export(export_id, rows: _Rows, *, sha256: str, size: int) -> dict | None:
    """Mark an export done and record ``export.created`` with its manifest as payload."""
    export = Export.objects.select_related("created_by").get(pk=export_id)
    manifest = _manifest(export, rows, sha256=sha256, size=size)
    with transaction.atomic():
        done = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
            status=Export.Status.DONE,
            rows_done=rows.count,
            manifest=manifest,
            finished_at=timezone.now(),
        )
        if not done:
            return None
        record(
            "export.created",
            actor=f"user:{export.created_by.get_username()}",
            reason=f"{rows.count} events exported as {export.format}",
            payload=manifest,
        )
    return manifest


def fail_export(export_id, error: str, *, rows: _Rows | None = None) -> None:
    """Mark an export failed. A download that stopped half-way still let rows out of the
    building, so it is recorded too (``export.created``, result ``failed``)."""
    export = Export.objects.select_related("created_by").get(pk=export_id)
    with transaction.atomic():
        failed = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
            status=Export.Status.FAILED,
            error=error[:2000],
            rows_done=rows.count if rows else 0,
            finished_at=timezone.now(),
        )
        if failed and export.streamed and export.format == Export.Format.CSV and rows:
            manifest = _manifest(export, rows, sha256=None, size=0)
            record(
                "export.created",
                actor=f"user:{export.created_by.get_username()}",
                result="failed",
                reason=error,
                payload=manifest,
            )
