"""Concurrent proposals on PostgreSQL (SPEC §3.2): budgets are not overspent and rule
counts are exact, within a session and across parallel sessions of one agent; different
agents do not wait for each other; a key still being evaluated answers 409
``idempotency_in_progress``."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from console import services
from console.authorize import pipeline, rows
from console.authorize import services as authz
from console.authorize.rows import AGENT_LOCK_CLASS, COMMIT_WITHOUT_FLUSH
from console.errors import Conflict
from console.models import AgentSession

pytestmark = pytest.mark.production


def in_thread(fn):
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return run


def test_concurrent_proposals_cannot_overspend_the_session(transactional_db, governed):
    agent, session = governed(settings={"budgets": {"max_spend_per_session": "1000"}})

    @in_thread
    def spend(_):
        return authz.evaluate_action(agent, session, name="pay", amount=Decimal("200"))["verdict"]

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(spend, range(8)))
    assert verdicts.count("ALLOW") == 5 and verdicts.count("HALT") == 3
    session.refresh_from_db()
    assert session.spend_total == Decimal("1000") and session.status == "halted"


def test_a_rate_rule_counts_exactly_under_concurrency_within_a_session(
    transactional_db, governed, admin_user
):
    authz.create_rule(
        by=admin_user,
        name="burst",
        kind="rate",
        pattern="contract.commit",
        window_seconds=3600,
        threshold=3,
        verdict="block",
    )
    agent, session = governed()

    @in_thread
    def commit(_):
        return authz.evaluate_action(agent, session, name="contract.commit")["verdict"]

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(commit, range(8)))
    assert sorted(verdicts) == ["ALLOW"] * 3 + ["BLOCK"] * 5


def test_parallel_sessions_cannot_overspend_the_agents_daily_budget(transactional_db, governed):
    # A drifting agent may open many sessions at once: the per-day budget still holds,
    # because proposals of one agent are decided one after the other (agent lock).
    agent, _ = governed(settings={"budgets": {"max_spend_per_day": "1000"}})
    sessions = [services.open_session(agent) for _ in range(8)]

    @in_thread
    def spend(session):
        return authz.evaluate_action(agent, session, name="pay", amount=Decimal("200"))["verdict"]

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(spend, sessions))
    assert verdicts.count("ALLOW") == 5 and verdicts.count("HALT") == 3


def test_a_rate_rule_counts_exactly_across_parallel_sessions(
    transactional_db, governed, admin_user
):
    authz.create_rule(
        by=admin_user,
        name="burst",
        kind="rate",
        pattern="contract.commit",
        window_seconds=3600,
        threshold=3,
        verdict="block",
    )
    agent, _ = governed()
    sessions = [services.open_session(agent) for _ in range(8)]

    @in_thread
    def commit(session):
        return authz.evaluate_action(agent, session, name="contract.commit")["verdict"]

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(commit, sessions))
    assert sorted(verdicts) == ["ALLOW"] * 3 + ["BLOCK"] * 5


def test_different_agents_are_decided_in_parallel(transactional_db, governed, monkeypatch):
    # The lock is per agent: two agents' proposals do not wait for each other.
    first, second = governed(), governed()
    inside = threading.Barrier(2, timeout=5)
    real_run = pipeline.run

    def meeting_run(ctx, *args, **kwargs):
        inside.wait()  # both proposals are inside their transactions at once
        return real_run(ctx, *args, **kwargs)

    monkeypatch.setattr(pipeline, "run", meeting_run)

    @in_thread
    def propose(pair):
        agent, session = pair
        return authz.evaluate_action(agent, session, name="x")["verdict"]

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(propose, [first, second])) == ["ALLOW", "ALLOW"]


def test_a_key_still_being_evaluated_answers_409_then_the_first_answer(
    transactional_db, governed, monkeypatch
):
    agent, session = governed()
    started, release = threading.Event(), threading.Event()
    real_run = pipeline.run

    def slow_run(ctx, *args, **kwargs):
        started.set()
        release.wait(5)
        return real_run(ctx, *args, **kwargs)

    monkeypatch.setattr(pipeline, "run", slow_run)
    answers = {}

    @in_thread
    def first():
        answers["first"] = authz.evaluate_action(
            agent, session, name="x", idempotency_key="k", request_digest="d"
        )

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(5)
    with pytest.raises(Conflict) as busy:
        authz.evaluate_action(agent, session, name="x", idempotency_key="k", request_digest="d")
    assert busy.value.code == "idempotency_in_progress"
    release.set()
    thread.join(5)
    deadline = time.monotonic() + 5
    while "first" not in answers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (
        authz.evaluate_action(agent, session, name="x", idempotency_key="k", request_digest="d")
        == answers["first"]
    )


FLUSH = "SELECT pg_logical_emit_message(true, 'warden.durable', '')"


def _statements(captured) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


def test_a_proposal_commits_without_waiting_for_the_disk_and_answers_after_the_flush(
    transactional_db, governed
):
    # The agent's locks are released at the commit, not after its fsync; the answer waits
    # for the flush (a statement that takes a transaction id commits synchronously).
    agent, session = governed()
    with CaptureQueriesContext(connection) as captured:
        answer = authz.evaluate_action(agent, session, name="invoice.read")
    assert answer["verdict"] == "ALLOW"
    statements = _statements(captured)
    commit = statements.index("COMMIT")
    assert any(COMMIT_WITHOUT_FLUSH in sql for sql in statements[:commit])
    assert statements[-1] == FLUSH
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")  # the setting was the transaction's only
        assert cursor.fetchone()[0] == "on"


def test_a_refused_proposal_does_not_wait_for_a_flush(transactional_db, governed):
    agent, session = governed()
    services.end_session(session)
    with CaptureQueriesContext(connection) as captured, pytest.raises(Conflict):
        authz.evaluate_action(agent, session, name="invoice.read")
    assert FLUSH not in _statements(captured)


def test_the_agent_lock_is_taken_only_once_the_session_row_is_locked(transactional_db, governed):
    # Lock order everywhere: sessions before their agent. Both locks are taken in one
    # statement; the row is locked in a materialised CTE, so a proposal that waits for
    # its session row holds no agent lock meanwhile.
    agent, session = governed()
    other = services.open_session(agent)

    def agent_locks_held() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = %s",
                [AGENT_LOCK_CLASS],
            )
            return cursor.fetchone()[0]

    with ThreadPoolExecutor(1) as pool:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM console_agentsession WHERE id = %s FOR UPDATE", [session.id]
                )
            waiting = pool.submit(
                in_thread(authz.evaluate_action), agent, session, name="invoice.read"
            )
            time.sleep(0.5)
            assert not waiting.done()
            assert agent_locks_held() == 0
            # The agent is not locked: another session of it is decided meanwhile.
            assert authz.evaluate_action(agent, other, name="invoice.read")["verdict"] == "ALLOW"
        assert waiting.result(timeout=10)["verdict"] == "ALLOW"


def test_the_flush_after_a_commit_without_flush_reaches_the_disk(transactional_db, governed):
    # A commit that skips its flush leaves its record in PostgreSQL's WAL buffers (lost in
    # a crash) until something flushes past it: wait_until_durable must. (Taking a
    # transaction id alone did not: PostgreSQL does not flush a commit that wrote nothing.)
    _, session = governed()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {COMMIT_WITHOUT_FLUSH}")
        AgentSession.objects.filter(pk=session.pk).update(goal="durable?")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")  # past the commit record
        committed = cursor.fetchone()[0]
        rows.wait_until_durable()
        cursor.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", [committed])
        assert cursor.fetchone()[0] is True
