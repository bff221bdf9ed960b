"""Plain-SQL writes and locks for the governed-action path.

Every proposal locks its session and its agent (one statement: ``locked``), inserts an
``Action`` and an ``IdempotencyRecord`` and moves the session's counters (statements that
``audit.record`` sends with the ``action.evaluated`` event, in one round trip). The ORM
spends more CPU compiling those statements than the database spends running them, so they
are written once here, with values prepared by the models' own fields (as
``audit.services`` does for events).
"""

from __future__ import annotations

import json
import zlib
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.db import connection, models

# pg_advisory_xact_lock(class, key) class of the per-agent decision lock ("WAGT").
AGENT_LOCK_CLASS = 0x57414754

# A select-list expression: this transaction commits without waiting for its WAL flush.
COMMIT_WITHOUT_FLUSH = "set_config('synchronous_commit', 'off', true) AS commit_mode"


def insert_statement(instance: models.Model) -> tuple[str, list]:
    """The INSERT of one new model instance (every concrete field, defaults applied), for
    ``execute``."""
    meta = instance._meta
    fields = [
        f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))
    ]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in fields]
    marks = ", ".join(["%s"] * len(values))
    return f"INSERT INTO {meta.db_table} ({columns}) VALUES ({marks})", values


def locked(model: type[models.Model], pk: Any, *, also: str = "", then: str = "") -> models.Model:
    """The row with primary key ``pk``, locked FOR UPDATE until the transaction ends
    (SQLite: its IMMEDIATE transaction already holds the write lock). ``also``: extra
    select-list expressions (``(SELECT …) AS name``), read in the same round trip and set
    on the instance. ``then`` (PostgreSQL): an expression evaluated once the row is locked
    (the row is locked in a materialised CTE, so the expression cannot run first), in the
    same round trip: ``agent_lock``."""
    meta = model._meta
    key = meta.pk.get_db_prep_value(pk, connection)
    postgresql = connection.vendor == "postgresql"
    lock = " FOR UPDATE" if postgresql else ""
    extra = f", {also}" if also else ""
    sql = f"SELECT {meta.db_table}.*{extra} FROM {meta.db_table} WHERE {meta.pk.column} = %s{lock}"
    if then and postgresql:
        sql = f"WITH locked AS MATERIALIZED ({sql}) SELECT locked.*, {then} FROM locked"
    rows = list(model.objects.raw(sql, [key]))
    if not rows:
        raise model.DoesNotExist(f"no {meta.model_name} {pk}")
    return rows[0]


def agent_lock(agent_id: Any) -> str:
    """The select-list expression that takes the agent's advisory lock until the
    transaction ends (PostgreSQL; SQLite's IMMEDIATE transaction already serialises
    writers): for ``locked(…, then=…)``."""
    key = zlib.crc32(str(agent_id).encode()) - 2**31
    return f"pg_advisory_xact_lock({AGENT_LOCK_CLASS}, {key}) AS agent_locked"


def count_session_action_statement(
    session_model, session_id: Any, spend: Decimal
) -> tuple[str, list]:
    """The UPDATE of a session's counters for one more action, for ``execute``."""
    meta = session_model._meta
    spend_value = meta.get_field("spend_total").get_db_prep_save(spend, connection)
    key = meta.pk.get_db_prep_value(session_id, connection)
    return (
        f"UPDATE {meta.db_table} SET action_count = action_count + 1, "
        f"spend_total = spend_total + %s WHERE {meta.pk.column} = %s",
        [spend_value, key],
    )


def stored_answer(record_model, agent_id: Any, key: str, lock: tuple[int, int] | None):
    """``(locked, request_sha256, response)`` of an idempotency key in one round trip:
    ``locked`` is the advisory try-lock (PostgreSQL; always True elsewhere)."""
    meta = record_model._meta
    agent = meta.get_field("agent").get_db_prep_value(agent_id, connection)
    select = "SELECT pg_try_advisory_xact_lock(%s, %s)" if lock else "SELECT 1"
    params: list[Any] = list(lock) if lock else []
    with connection.cursor() as cursor:
        cursor.execute(
            f"{select}, r.request_sha256, r.response FROM (SELECT 1) AS one "
            f"LEFT JOIN {meta.db_table} r ON r.agent_id = %s AND r.key = %s",
            [*params, agent, key],
        )
        claimed, digest, response = cursor.fetchone()
    if isinstance(response, str | bytes):
        response = json.loads(response)
    return bool(claimed), digest, response


@contextmanager
def durable_before_return():
    """Around a transaction that serialises writers (an agent's proposals wait for each
    other on the agent lock): yields True when the transaction may commit without waiting
    for the disk (select ``COMMIT_WITHOUT_FLUSH`` in it) and then waits for the disk here,
    after the commit, before the caller answers.

    PostgreSQL holds a transaction's locks until its commit record is flushed, so the next
    proposal of the agent would wait for this one's fsync too. Committing with
    ``synchronous_commit`` off releases the locks at once; the flush that follows makes the
    answer exactly as durable as a synchronous commit: nobody is answered before their
    transaction is on disk. A later transaction that read this one's rows commits after it
    in the same write-ahead log, so it is never durable without this one. (What another
    reader sees in between is committed; after a crash in that window, it is gone together
    with everything that depended on it, and no one was answered.)

    A replayed answer (same idempotency key) waits for the flush too: the first request
    may still be between its commit and its flush.

    Only for the outermost transaction on PostgreSQL: inside a caller's transaction the
    commit is the caller's, and SQLite commits synchronously. Not on an exception: nothing
    is answered then."""
    deferred = connection.vendor == "postgresql" and not connection.in_atomic_block
    yield deferred
    if deferred:
        wait_until_durable()


def wait_until_durable() -> None:
    """Return once every transaction committed so far is on disk (PostgreSQL, outside a
    transaction).

    A transactional logical-decoding message (any role may emit one; no consumer is
    needed) takes a transaction id and writes to the WAL, so its own commit is synchronous
    (the session's setting), and that flush covers every earlier commit record. Only
    taking a transaction id is not enough: PostgreSQL does not wait for the flush of a
    commit whose transaction wrote nothing else (the crash-restart fault test lost
    answered proposals that way)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_logical_emit_message(true, 'warden.durable', '')")
