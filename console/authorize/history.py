"""The pipeline's reads of ``console_action`` on the hot path, as plain SQL.

Behavioural rules, budgets and the policy input read the agent's history once per
proposal each; building those queries with the ORM costs more CPU than running them, so
they are written here once (same indexes: ``(agent, name, created_at)``,
``(agent, created_at)``, ``(agent, target)``). Values go through the model fields' own
preparation, so UUIDs and times are stored-format on SQLite and PostgreSQL alike. The
ORM equivalents are in the tests, which check both give the same answers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection

from .models import Action
from .patterns import is_literal, sql_regex

TABLE = Action._meta.db_table
CENTS = Decimal("0.01")
COMMITTED = ("ALLOW", "REQUIRE_APPROVAL")
_ID = Action._meta.get_field("id")
_CREATED = Action._meta.get_field("created_at")


def _uuid(value):
    return _ID.get_db_prep_value(value, connection)


def _time(value: dt.datetime):
    return _CREATED.get_db_prep_value(value, connection)


def _where(ctx, *, since=None, pattern=None, target=None, seen=False) -> tuple[str, list]:
    strict = ctx.exclude_action_id is not None  # a backtest: strictly before the action
    clauses = ["agent_id = %s", "created_at < %s" if strict else "created_at <= %s"]
    params = [_uuid(ctx.agent.id), _time(ctx.now)]
    if strict:
        clauses.append("id <> %s")
        params.append(_uuid(ctx.exclude_action_id))
    if since is not None:
        clauses.append("created_at > %s")
        params.append(_time(since))
    if pattern is not None:
        if is_literal(pattern):
            clauses.append("name = %s")
            params.append(pattern)
        else:
            clauses.append("name ~ %s" if connection.vendor == "postgresql" else "name REGEXP %s")
            params.append(sql_regex(pattern))
    if target is not None:
        clauses.append("target = %s")
        params.append(target)
    if seen:
        clauses.append("(verdict = 'ALLOW' OR result_status IS NOT NULL)")
    return " AND ".join(clauses), params


def _one(sql: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def money(value) -> Decimal:
    if value is None:
        return Decimal("0")
    return Decimal(str(value)).quantize(CENTS)


def count(ctx, *, pattern: str, since=None, limit: int | None = None) -> int:
    """Matching actions; with ``limit`` the scan stops after that many (a rate rule only
    needs to know whether its threshold is passed)."""
    where, params = _where(ctx, since=since, pattern=pattern)
    if limit is None:
        return _one(f"SELECT COUNT(*) FROM {TABLE} WHERE {where}", params)[0]
    return _one(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {TABLE} WHERE {where} LIMIT %s) AS hits",
        [*params, limit],
    )[0]


def total(ctx, *, pattern: str, since=None) -> Decimal:
    where, params = _where(ctx, since=since, pattern=pattern)
    return money(_one(f"SELECT SUM(amount) FROM {TABLE} WHERE {where}", params)[0])


def exists(
    ctx, *, pattern: str | None = None, target: str | None = None, since=None, seen=False
) -> bool:
    where, params = _where(ctx, since=since, pattern=pattern, target=target, seen=seen)
    return _one(f"SELECT 1 FROM {TABLE} WHERE {where} LIMIT 1", params) is not None


def last_day(ctx) -> dict:
    """SPEC §3.3 ``history``: actions in the last hour and day, spend in the last day."""
    day = ctx.now - dt.timedelta(days=1)
    hour = ctx.now - dt.timedelta(hours=1)
    where, params = _where(ctx, since=day)
    row = _one(
        f"SELECT COUNT(*), "
        f"SUM(CASE WHEN created_at > %s THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN verdict IN ('ALLOW', 'REQUIRE_APPROVAL') THEN amount END) "
        f"FROM {TABLE} WHERE {where}",
        [_time(hour), *params],
    )
    return {
        "actions_last_day": row[0] or 0,
        "actions_last_hour": int(row[1] or 0),
        "spend_last_day": money(row[2]),
    }
