"""The pipeline's reads of the agent's history on the hot path, as plain SQL.

Behavioural rules, budgets and the policy input read the agent's history once per
proposal each; building those queries with the ORM costs more CPU than running them, so
they are written here once. Values go through the model fields' own preparation, so
UUIDs and times are stored-format on SQLite and PostgreSQL alike. The ORM equivalents are
in the tests, which check both give the same answers.

Counts and sums over a window read the rollups (``ActionRollup``, ``buckets``): whole
buckets plus the two partial seconds at the window's edges from ``console_action``, so
their cost does not grow with the agent's volume. Existence of a seen target reads
``console_action`` by its ``(agent, target)`` index. A backtest (``exclude_action_id``:
history strictly before a recorded action, without it) reads ``console_action`` only.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection

from . import buckets
from .context import COMMITTED_VERDICTS
from .models import Action, ActionRollup
from .patterns import is_literal, sql_regex

TABLE = Action._meta.db_table
ROLLUPS = ActionRollup._meta.db_table
CENTS = Decimal("0.01")
# Verdicts whose amounts count as committed spend, as an SQL list.
COMMITTED_SQL = "(" + ", ".join(f"'{verdict}'" for verdict in COMMITTED_VERDICTS) + ")"
_ID = Action._meta.get_field("id")
_CREATED = Action._meta.get_field("created_at")


def _uuid(value):
    return _ID.get_db_prep_value(value, connection)


def _time(value: dt.datetime):
    return _CREATED.get_db_prep_value(value, connection)


def _short_name(index: int) -> str:
    """a, b, …, z, ba, bb, …: placeholders are most of a long statement's text."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = letters[index % 26]
    while index >= 26:
        index //= 26
        name = letters[index % 26] + name
    return name


class Params:
    """Named placeholders for one statement, one per distinct value and kind: a proposal's
    reads share the agent, ``now`` and most bucket bounds, so its statement binds a few
    dozen values instead of a hundred, and psycopg (which converts statements of at most
    50 parameters once, not on every run) caches its conversion. ``kind`` keeps values
    that are equal but bound to columns of different types apart."""

    def __init__(self):
        self._names: dict[tuple, str] = {}

    def __call__(self, value, kind: str) -> str:
        key = (kind, type(value), value)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = _short_name(len(self._names))
        return f"%({name})s"

    def values(self) -> dict:
        return {name: key[2] for key, name in self._names.items()}


def _where(ctx, p: Params, *, since=None, pattern=None, target=None, seen=False) -> str:
    strict = ctx.exclude_action_id is not None  # a backtest: strictly before the action
    now = p(_time(ctx.now), "time")
    clauses = [f"agent_id = {p(_uuid(ctx.agent.id), 'agent')}"]
    clauses.append(f"created_at < {now}" if strict else f"created_at <= {now}")
    if strict:
        clauses.append(f"id <> {p(_uuid(ctx.exclude_action_id), 'action')}")
    if since is not None:
        clauses.append(f"created_at > {p(_time(since), 'time')}")
    if pattern is not None:
        clauses.append(_name(pattern, p))
    if target is not None:
        clauses.append(f"target = {p(target, 'target')}")
    if seen:
        clauses.append("(verdict = 'ALLOW' OR result_status IS NOT NULL)")
    return " AND ".join(clauses)


def _name(pattern: str, p: Params) -> str:
    if is_literal(pattern):
        return f"name = {p(pattern, 'name')}"
    operator = "~" if connection.vendor == "postgresql" else "REGEXP"
    return f"name {operator} {p(sql_regex(pattern), 'name')}"


def _window(ctx, p: Params, label: int, *, since, pattern=None) -> list[str]:
    """Rows ``(label, n, amount, committed amount, verdict)`` whose sums are the agent's
    actions (matching ``pattern``) with ``since < created_at <= now``: rollup buckets
    (their committed amount kept) plus the actions in the partial seconds at the edges
    (their verdict, resolved once in ``prefetch``)."""
    cover = buckets.cover(since, ctx.now)
    agent = p(_uuid(ctx.agent.id), "agent")
    names = "" if pattern is None else f" AND {_name(pattern, p)}"
    runs = " OR ".join(
        f"(resolution = {p(size, 'size')} AND start >= {p(low, 'second')} "
        f"AND start < {p(high, 'second')})"
        for size, low, high in cover.runs
    )
    parts = []
    if runs:
        parts.append(
            f"SELECT {label}, count, amount, committed_amount, NULL FROM {ROLLUPS} "
            f"WHERE agent_id = {agent}{names} AND ({runs})"
        )
    # One simple range per edge (UNION ALL, not OR): each is then an index range on
    # (agent, name, created_at) or (agent, created_at) whatever the table's statistics say.
    for low, low_inclusive, high, high_inclusive in cover.edges:
        parts.append(
            f"SELECT {label}, 1, amount, NULL, verdict FROM {TABLE} WHERE agent_id = {agent}{names} "
            f"AND created_at {'>=' if low_inclusive else '>'} {p(_time(low), 'time')} "
            f"AND created_at {'<=' if high_inclusive else '<'} {p(_time(high), 'time')}"
        )
    return parts


def _rolled(ctx) -> bool:
    return ctx.exclude_action_id is None


def _one(sql: str, p: Params):
    with connection.cursor() as cursor:
        cursor.execute(sql, p.values())
        return cursor.fetchone()


def _prepared_cursor():
    """PostgreSQL: a cursor that binds parameters on the server, so the connection may
    prepare the prefetch statement once it has run one text five times (psycopg's
    ``prepare_threshold``); Django's cursors bind on the client and are never prepared.

    Measured in ``bench/evaluate.py``, that often does not happen. psycopg counts the
    runs of every statement in a list of 100, Django's too, and those carry their values
    in their text, so each request adds new entries and this one drops out before its
    fifth run: it was parsed in 271 of 276 runs in a 2 s run and 330 of 677 in a 10 s
    run. Two alternatives measured worse or not worth it (bench/README, 2026-12-03
    afternoon):

    * preparing it on its first run saved 0.33 ms of database CPU per proposal;
    * a text that never changes, on a generic plan, ran slower than planning each time.

    Still a Django cursor wrapper: query logging and execute wrappers see it."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


def _seen(ctx, p: Params, label: int, *, target: str, since) -> list[str]:
    """A row ``(label, 1, …)`` if the agent already acted on ``target`` (ALLOWed, or a
    result was reported) within the window, else none."""
    where = _where(ctx, p, since=since, target=target, seen=True)
    return [
        f"SELECT {label}, 1, NULL, NULL, NULL FROM "
        f"(SELECT 1 FROM {TABLE} WHERE {where} LIMIT 1) AS seen"
    ]


# --- reading ahead: every read of one proposal in one statement ------------------------
def window(pattern: str | None, since) -> tuple:
    """The read ``(count, amount, committed amount)`` of a window: see ``prefetch``."""
    return ("window", pattern, since)


def seen_target(target: str, since) -> tuple:
    return ("seen", target, since)


def last_day_reads(now: dt.datetime) -> list[tuple]:
    return [window(None, now - dt.timedelta(days=1)), window(None, now - dt.timedelta(hours=1))]


def prefetch(ctx, reads) -> None:
    """Run the reads (``window`` / ``seen_target``) a proposal will make in one statement
    and keep the answers on ``ctx``; the functions below answer from there and read on
    their own what was not fetched ahead. A backtest reads as it goes."""
    reads = [read for read in dict.fromkeys(reads) if read not in ctx.reads]
    if not reads or not _rolled(ctx):
        return
    p = Params()
    parts = []
    for label, (kind, key, since) in enumerate(reads):
        if kind == "window":
            parts += _window(ctx, p, label, since=since, pattern=key)
        else:
            parts += _seen(ctx, p, label, target=key, since=since)
    # One row per read that found anything: (label, count, amount, committed amount). The
    # header names and types the columns (it returns no row).
    header = (
        "SELECT 0 AS r, 0 AS n, CAST(NULL AS NUMERIC) AS a, CAST(NULL AS NUMERIC) AS c, "
        "CAST(NULL AS TEXT) AS v WHERE 1 = 0"
    )
    sql = (
        "SELECT r, SUM(n), COALESCE(SUM(a), 0), "
        f"COALESCE(SUM(CASE WHEN v IN {COMMITTED_SQL} THEN a ELSE c END), 0) "
        f"FROM ({' UNION ALL '.join([header, *parts])}) AS found GROUP BY r"
    )
    with _prepared_cursor() as cursor:
        cursor.execute(sql, p.values())
        found = {row[0]: row[1:] for row in cursor.fetchall()}
    for label, read in enumerate(reads):
        ctx.reads[read] = found.get(label, (0, Decimal("0"), Decimal("0")))


def _read(ctx, read) -> tuple:
    if read not in ctx.reads:
        prefetch(ctx, [read])
    return ctx.reads[read]


def money(value) -> Decimal:
    if value is None:
        return Decimal("0")
    return Decimal(str(value)).quantize(CENTS)


def count(ctx, *, pattern: str, since=None, limit: int | None = None) -> int:
    """Matching actions; with ``limit`` at most that many (a rate rule only needs to know
    whether its threshold is passed, and a backtest's scan stops there)."""
    if _rolled(ctx):
        found = int(_read(ctx, window(pattern, since))[0])
        return found if limit is None else min(found, limit)
    p = Params()
    where = _where(ctx, p, since=since, pattern=pattern)
    if limit is None:
        return _one(f"SELECT COUNT(*) FROM {TABLE} WHERE {where}", p)[0]
    return _one(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {TABLE} WHERE {where} "
        f"LIMIT {p(limit, 'limit')}) AS hits",
        p,
    )[0]


def total(ctx, *, pattern: str, since=None) -> Decimal:
    if _rolled(ctx):
        return money(_read(ctx, window(pattern, since))[1])
    p = Params()
    where = _where(ctx, p, since=since, pattern=pattern)
    return money(_one(f"SELECT SUM(amount) FROM {TABLE} WHERE {where}", p)[0])


def exists(
    ctx, *, pattern: str | None = None, target: str | None = None, since=None, seen=False
) -> bool:
    if _rolled(ctx) and pattern is not None and target is None and not seen:
        return count(ctx, pattern=pattern, since=since) > 0
    if _rolled(ctx) and pattern is None and target is not None and seen:
        return bool(_read(ctx, seen_target(target, since))[0])
    p = Params()
    where = _where(ctx, p, since=since, pattern=pattern, target=target, seen=seen)
    return _one(f"SELECT 1 FROM {TABLE} WHERE {where} LIMIT 1", p) is not None


def last_day(ctx) -> dict:
    """SPEC §3.3 ``history``: actions in the last hour and day, spend in the last day."""
    day = ctx.now - dt.timedelta(days=1)
    hour = ctx.now - dt.timedelta(hours=1)
    if _rolled(ctx):
        day_read, hour_read = last_day_reads(ctx.now)
        prefetch(ctx, [day_read, hour_read])
        last_day, last_hour = ctx.reads[day_read], ctx.reads[hour_read]
        return {
            "actions_last_day": int(last_day[0]),
            "actions_last_hour": int(last_hour[0]),
            "spend_last_day": money(last_day[2]),
        }
    p = Params()
    hour_start = p(_time(hour), "time")
    where = _where(ctx, p, since=day)
    row = _one(
        f"SELECT COUNT(*), "
        f"SUM(CASE WHEN created_at > {hour_start} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN verdict IN {COMMITTED_SQL} THEN amount END) "
        f"FROM {TABLE} WHERE {where}",
        p,
    )
    return {
        "actions_last_day": row[0] or 0,
        "actions_last_hour": int(row[1] or 0),
        "spend_last_day": money(row[2]),
    }
