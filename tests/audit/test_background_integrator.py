"""WARDEN_INTEGRATOR=thread (the PostgreSQL default): a background thread per process
numbers, chains and signs events after commit, so the committing request does not wait for
the log's serial point (audit.services.BackgroundIntegrator)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.test import override_settings

from audit import services
from audit.models import EventLogEntry, GovernanceEvent, PendingEvent
from audit.services import record


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def integrated() -> int:
    return EventLogEntry.objects.count()


@pytest.fixture
def thread_mode():
    with override_settings(WARDEN_INTEGRATOR="thread"):
        yield


def test_the_commit_does_not_wait_for_integration(transactional_db, thread_mode, monkeypatch):
    release = threading.Event()
    real = services.integrate_pending

    def held(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "integrate_pending", held)
    started = time.monotonic()
    with transaction.atomic():
        record("test.event", actor="system:test")
    assert time.monotonic() - started < 5  # returned while the integrator is held
    assert PendingEvent.objects.count() == 1 and integrated() == 0
    release.set()
    assert wait_until(lambda: integrated() == 1)
    assert not PendingEvent.objects.exists()


def test_concurrent_writers_get_a_gap_free_signed_chain(transactional_db, thread_mode):
    writers, each = 8, 25

    def write(n: int) -> None:
        try:
            for i in range(each):
                with transaction.atomic():
                    record("test.event", actor=f"system:writer-{n}", payload={"i": i})
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    total = writers * each
    assert GovernanceEvent.objects.count() == total
    assert wait_until(lambda: integrated() == total)
    entries = list(
        EventLogEntry.objects.order_by("seq").values_list("seq", "prev_hash", "leaf_hash")
    )
    assert [seq for seq, _, _ in entries] == list(range(1, total + 1))
    assert all(entries[i][1] == entries[i - 1][2] for i in range(1, total))
    # Every event got exactly one log entry.
    assert EventLogEntry.objects.values("event").distinct().count() == total


def test_a_failed_pass_is_retried(transactional_db, thread_mode, monkeypatch):
    real = services.integrate_pending
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "integrate_pending", flaky)
    monkeypatch.setattr(services.BackgroundIntegrator, "RETRY_DELAY", 0.05)
    with transaction.atomic():
        record("test.event", actor="system:test")
    assert wait_until(lambda: integrated() == 1)
    assert calls["n"] >= 2
