"""Action rollups: the bucket arithmetic covers a window exactly, the trigger keeps the
rollups, and reads through them agree with plain scans of ``console_action``."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from console.authorize import buckets, history, rollups
from console.authorize.context import Config, Context, Proposal
from console.authorize.layers.rules import name_q
from console.authorize.models import Action, ActionRollup

UTC = dt.UTC
BASE = dt.datetime(2026, 11, 30, 22, 59, 58, 999_999, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=4 * 86400 * 10**6).map(
    lambda micros: BASE + dt.timedelta(microseconds=micros)
)


# --- the arithmetic -------------------------------------------------------------------
@given(first=st.integers(0, 10**7), length=st.integers(0, 3 * 10**6))
def test_aligned_runs_partition_the_seconds_with_at_most_two_runs_per_size(first, length):
    end = first + length
    runs = buckets.aligned_runs(first, end)
    covered = []
    for size, low, high in runs:
        assert size in buckets.RESOLUTIONS
        assert low % size == 0 and high % size == 0 and low < high
        covered.append((low, high))
    covered.sort()
    position = first
    for low, high in covered:
        assert low == position  # no gap, no overlap
        position = high
    assert position == end
    for size in buckets.RESOLUTIONS:
        assert sum(1 for run in runs if run[0] == size) <= 2


@given(since=moments, length=st.integers(0, 3 * 86400 * 10**6), probe=moments)
def test_cover_counts_every_moment_of_the_window_exactly_once(since, length, probe):
    now = since + dt.timedelta(microseconds=length)
    cover = buckets.cover(since, now)
    second = buckets.second_of(probe)
    in_runs = sum(
        1
        for size, low, high in cover.runs
        if low <= second - second % size < high  # runs are aligned: the whole bucket
    )
    in_edges = sum(
        1
        for low, low_in, high, high_in in cover.edges
        if (low <= probe if low_in else low < probe)
        and (probe <= high if high_in else probe < high)
    )
    # A probe in a run's bucket: the whole bucket lies inside the window.
    assert in_runs + in_edges == (1 if since < probe <= now else 0)


@given(now=moments, probe=moments)
def test_cover_without_a_start_takes_everything_up_to_now(now, probe):
    cover = buckets.cover(None, now)
    second = buckets.second_of(probe)
    in_runs = sum(1 for size, low, high in cover.runs if low <= second - second % size < high)
    in_edges = sum(1 for low, _, high, _ in cover.edges if low <= probe <= high)
    assert in_runs + in_edges == (1 if probe <= now else 0)


def test_a_72_hour_window_reads_a_bounded_number_of_buckets():
    now = dt.datetime(2026, 12, 1, 13, 47, 31, 250_000, tzinfo=UTC)
    cover = buckets.cover(now - dt.timedelta(hours=72), now)
    rows_per_name = sum((high - low) // size for size, low, high in cover.runs)
    assert rows_per_name < 2 * (24 + 60 + 60) + 3


# --- the trigger and the reads --------------------------------------------------------
@pytest.fixture
def agent_and_session(governed):
    return governed(name="rollup-agent")


def _record(agent, session, rng, when, name):
    amount = rng.choice([None, Decimal("0.01"), Decimal("12.50"), Decimal("999.99")])
    verdict = rng.choice(["ALLOW", "ALLOW", "REQUIRE_APPROVAL", "BLOCK", "HALT"])
    return Action(
        agent=agent,
        session=session,
        name=name,
        target="vendor:x",
        args_sha256="0" * 64,
        amount=amount,
        verdict=verdict,
        source="test",
        created_at=when,
    )


def test_the_trigger_counts_an_action_into_its_four_buckets(agent_and_session):
    agent, session = agent_and_session
    when = dt.datetime(2026, 12, 1, 12, 34, 56, 789_000, tzinfo=UTC)
    rng = random.Random(1)
    for verdict, amount in (("ALLOW", "10.00"), ("BLOCK", "5.00")):
        action = _record(agent, session, rng, when, "invoice.read")
        action.verdict, action.amount = verdict, Decimal(amount)
        action.save()
    second = buckets.second_of(when)
    rows = {
        row.resolution: row
        for row in ActionRollup.objects.filter(agent_id=agent.id, name="invoice.read")
    }
    assert set(rows) == {1, 60, 3600, 86400}
    for size, row in rows.items():
        assert row.start == second - second % size
        assert (row.count, row.amount, row.committed_amount) == (
            2,
            Decimal("15.00"),
            Decimal("10.00"),  # the BLOCKed one spends nothing
        )


@pytest.mark.parametrize("seed", range(4))
def test_reads_through_the_rollups_match_a_plain_scan(agent_and_session, seed):
    agent, session = agent_and_session
    rng = random.Random(seed)
    start = BASE + dt.timedelta(microseconds=rng.randrange(10**6))
    names = ["invoice.read", "invoice.flag", "contract.commit", "payment.release"]
    actions = []
    for _ in range(300):
        # Bursts inside one second, spreads over minutes, hours and days.
        step = rng.choice([1, 900_000, 61 * 10**6, 3700 * 10**6, 20 * 3600 * 10**6])
        start += dt.timedelta(microseconds=rng.randrange(step))
        if rng.random() < 0.2:  # the last microseconds of a second, and its first
            start = start.replace(microsecond=rng.choice([999_999, 999_500, 0]))
        actions.append(_record(agent, session, rng, start, rng.choice(names)))
    Action.objects.bulk_create(actions)
    moments = [a.created_at for a in actions]
    for _ in range(12):
        now = rng.choice(moments) + dt.timedelta(microseconds=rng.choice([0, 1, -1, 400_000]))
        ctx = Context(agent, session, Proposal(name="x"), now, Config())
        seconds = rng.choice([1, 2, 59, 60, 61, 3600, 72 * 3600, None])
        since = now - dt.timedelta(seconds=seconds) if seconds else None
        pattern = rng.choice(["invoice.*", "contract.commit", "*", "nothing"])
        orm = ctx.actions().filter(name_q(pattern))
        if since is not None:
            orm = orm.filter(created_at__gt=since)
        expected = orm.aggregate(n=Count("id"), s=Sum("amount"))
        assert history.count(ctx, pattern=pattern, since=since) == expected["n"]
        assert history.total(ctx, pattern=pattern, since=since) == history.money(expected["s"])
        assert history.exists(ctx, pattern=pattern, since=since) == (expected["n"] > 0)
        day = ctx.actions().filter(created_at__gt=now - dt.timedelta(days=1))
        committed = Q(verdict__in=["ALLOW", "REQUIRE_APPROVAL"])
        assert history.last_day(ctx) == {
            "actions_last_day": day.count(),
            "actions_last_hour": day.filter(created_at__gt=now - dt.timedelta(hours=1)).count(),
            "spend_last_day": history.money(day.filter(committed).aggregate(s=Sum("amount"))["s"]),
        }


def test_the_backfill_rebuilds_what_the_trigger_kept(agent_and_session):
    agent, session = agent_and_session
    rng = random.Random(7)
    when = BASE
    actions = []
    for _ in range(120):
        when += dt.timedelta(microseconds=rng.randrange(90 * 10**6))
        actions.append(_record(agent, session, rng, when, rng.choice(["a.b", "a.c"])))
    Action.objects.bulk_create(actions)

    def snapshot():
        return sorted(
            ActionRollup.objects.filter(agent_id=agent.id).values_list(
                "resolution", "start", "name", "count", "amount", "committed_amount"
            )
        )

    kept = snapshot()
    assert sum(row[3] for row in kept if row[0] == 1) == 120
    ActionRollup.objects.filter(agent_id=agent.id).delete()
    with connection.cursor() as cursor:
        cursor.execute(rollups.backfill_sql(connection.vendor))
    assert snapshot() == kept


def test_a_busy_agents_window_is_one_query(agent_and_session, t0):
    """Two hours of an action every 4 s: the last hour is counted in one statement."""
    agent, session = agent_and_session
    rng = random.Random(3)
    day = [
        _record(agent, session, rng, t0 - dt.timedelta(seconds=4 * n, microseconds=500), "x.y")
        for n in range(1800)
    ]
    Action.objects.bulk_create(day, batch_size=2000)
    now = t0
    ctx = Context(agent, session, Proposal(name="x.y"), now, Config())
    with CaptureQueriesContext(connection) as captured:
        found = history.count(ctx, pattern="x.y", since=now - dt.timedelta(hours=1))
    assert found == 900 and len(captured) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_the_prefetch_statement_is_prepared_by_the_connection(agent_and_session, t0):
    agent, session = agent_and_session
    connection.ensure_connection()
    raw = connection.connection
    threshold, raw.prepare_threshold = raw.prepare_threshold, 1  # prepared from its second run
    try:
        for _ in range(3):
            ctx = Context(agent, session, Proposal(name="x.y"), t0, Config())
            history.prefetch(ctx, history.last_day_reads(t0))
            assert history.last_day(ctx)["actions_last_day"] == 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ["SELECT r, SUM(n)%"],
            )
            assert cursor.fetchone()[0] >= 1
    finally:
        raw.prepare_threshold = threshold
