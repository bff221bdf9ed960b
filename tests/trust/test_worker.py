"""A real Celery worker on the Redis broker (production mode, SPEC §5.5).

``celery -A console worker`` runs as a subprocess against the pytest database (committed
data: ``transactional_db``). Violations recorded here produce history rows there; a
worker killed with SIGKILL in the middle of a recompute (inside its transaction, after
its writes) loses nothing and applies nothing twice: after a restart the message comes
back (acks_late + the broker's visibility timeout, lowered for the test) and the penalty
is applied exactly once. Every wait is bounded and no worker process outlives the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from console.models import Agent
from tests.trust import events as ev
from trust.models import TrustHistory

pytestmark = [pytest.mark.production, pytest.mark.celery_worker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 3  # seconds before an unacked message is delivered again


class Worker:
    """One ``celery worker`` process group (main process + its prefork child)."""

    def __init__(self, env: dict, log: Path, name: str) -> None:
        self.log = log
        self.handle = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "-Q",
                "trust",
                "-c",
                "1",
                "-l",
                "info",
                "-n",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so killpg reaches the child
        )
        self.pids: set[int] = {self.process.pid}

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.tail()}")
            if b" ready." in self.log.read_bytes():
                self._collect_pids()
                return
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.tail()}")

    def _collect_pids(self) -> None:
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.pids |= {child.pid for child in children}

    def kill9(self) -> None:
        self._collect_pids()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._wait_gone(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self._collect_pids()
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._wait_gone(10)
        self.handle.close()

    def alive(self) -> list[int]:
        alive = []
        for pid in self.pids:
            try:
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def _wait_gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.alive():  # a straggler: never leave one behind
            os.kill(pid, signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def wait_for(predicate, timeout: float, what: str, worker: Worker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(
        f"timed out waiting for {what}" + (f":\n{worker.tail()}" if worker else "")
    )


@pytest.fixture
def broker():
    """A clean trust queue on the test's Redis database (no stale or unacked messages)."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = ["trust", "unacked", "unacked_index", "unacked_mutex"]
    client.delete(*keys)
    yield client
    client.delete(*keys)
    client.close()


@pytest.fixture
def worker_env(transactional_db, broker):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,  # the pytest database, not the developer's
        "REDIS_URL": os.environ["REDIS_URL"],
        "WARDEN_KEY_DIR": str(settings.WARDEN_KEY_DIR),
        "WARDEN_SIGNING_KEY": "",
        "WARDEN_CELERY_EAGER": "0",
        "WARDEN_CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "WARDEN_CELERY_RESTORE_INTERVAL": "1",
        "WARDEN_CELERY_RESTORE_THROTTLE": "1",
        "WARDEN_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def workers(worker_env, tmp_path):
    started: list[Worker] = []

    def start(name: str, **extra) -> Worker:
        worker = Worker({**worker_env, **extra}, tmp_path / f"{name}.log", name)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
    assert not [pid for worker in started for pid in worker.alive()], "a worker survived"
    # A killed worker's database session ends when PostgreSQL notices; make sure none is
    # left before the test database is flushed.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def rows(agent) -> list[TrustHistory]:
    return list(TrustHistory.objects.filter(agent=agent).order_by("id"))


@pytest.mark.timeout(240)
def test_a_killed_recompute_is_redelivered_and_applied_exactly_once(admin_user, workers, tmp_path):
    first = workers("normal")
    agent = ev.register_assessed(admin_user, "crash-test")
    assert Agent.objects.get(pk=agent.pk).behavioral == 100  # no eager task here
    with ev.at(ev.T0):
        ev.violation(agent, None, "major")
    wait_for(lambda: len(rows(agent)) == 2, 60, "the worker to apply the violation", first)
    assessment, penalty = rows(agent)
    assert assessment.change_type == "reassessment"
    assert penalty.change_type == "violation" and penalty.evaluated_by == "system:recompute_trust"
    assert Agent.objects.get(pk=agent.pk).behavioral == Decimal("85.00")
    first.stop()

    marker = tmp_path / "paused"
    slow = workers(
        "pausing", WARDEN_TEST_TRUST_PAUSE="120", WARDEN_TEST_TRUST_PAUSE_FILE=str(marker)
    )
    with ev.at(ev.T0):
        cause = ev.violation(agent, None, "critical")
    wait_for(marker.exists, 60, "the recompute to reach its pause", slow)
    assert len(rows(agent)) == 2  # its writes are not committed
    slow.kill9()
    assert not slow.alive()
    time.sleep(0.5)
    assert len(rows(agent)) == 2 and Agent.objects.get(pk=agent.pk).behavioral == Decimal("85.00")

    restarted = workers("restarted")
    wait_for(lambda: len(rows(agent)) == 3, 90, "the redelivered task to complete", restarted)
    # Give the broker time to deliver it again, were it going to: still applied once.
    time.sleep(VISIBILITY_TIMEOUT + 3)
    history = rows(agent)
    assert len(history) == 3
    assert history[-1].cause_event_id == cause.id and history[-1].behavioral_delta == -25
    assert Agent.objects.get(pk=agent.pk).behavioral == Decimal("60.00")
    assert b"trust.recompute_trust" in restarted.log.read_bytes()
