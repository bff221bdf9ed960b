"""Plain-SQL writes and locks for the governed-action path.

Every proposal inserts an ``Action`` and an ``IdempotencyRecord``, locks its session and
moves the session's counters (the three writes in one round trip: ``execute``). The ORM
spends more CPU compiling those statements than the database spends running them, so they
are written once here, with values prepared by the models' own fields (as
``audit.services`` does for events).
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

from django.db import connection, models

# pg_advisory_xact_lock(class, key) class of the per-agent decision lock ("WAGT").
AGENT_LOCK_CLASS = 0x57414754


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


def execute(statements: list[tuple[str, list]]) -> None:
    """Run writes that return nothing in one round trip where the connection allows it:
    PostgreSQL's client-side binding (Django's default) sends them as one query; SQLite
    takes them one by one. They run in order, in the caller's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not _server_side_binding():
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [value for _, params in statements for value in params],
            )
            return
        for sql, params in statements:
            cursor.execute(sql, params)


def _server_side_binding() -> bool:
    return bool(connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"))


def locked(model: type[models.Model], pk: Any, *, also: str = "") -> models.Model:
    """The row with primary key ``pk``, locked FOR UPDATE until the transaction ends
    (SQLite: its IMMEDIATE transaction already holds the write lock). ``also``: extra
    select-list expressions (``(SELECT …) AS name``), read in the same round trip and set
    on the instance."""
    meta = model._meta
    key = meta.pk.get_db_prep_value(pk, connection)
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    extra = f", {also}" if also else ""
    rows = list(
        model.objects.raw(
            f"SELECT {meta.db_table}.*{extra} FROM {meta.db_table} "
            f"WHERE {meta.pk.column} = %s{lock}",
            [key],
        )
    )
    if not rows:
        raise model.DoesNotExist(f"no {meta.model_name} {pk}")
    return rows[0]


def lock_agent(agent_id: Any) -> None:
    """Hold the agent's advisory lock until the transaction ends (PostgreSQL; SQLite's
    IMMEDIATE transaction already serialises writers)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [AGENT_LOCK_CLASS, zlib.crc32(str(agent_id).encode()) - 2**31],
        )


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
