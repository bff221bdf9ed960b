"""SPEC §4 agent side, over real HTTP on uvicorn: ``GET /api/v1/approvals/{id}?wait=N``
answers as soon as the request is decided (woken by the channel layer), ``pending`` when the
wait runs out, ``expired`` at the expiry — and a waiting request holds no thread and no
database connection."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from approvals import longpoll, services
from approvals.models import ApprovalRequest
from console import services as console_services
from console.handlers import is_long_poll
from tests.approvals.helpers import propose_needing_approval
from warden_client import Warden

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent_key(agent, admin_user):
    _, key = console_services.issue_key(agent, by=admin_user)
    return key


class Poll(threading.Thread):
    """One long-poll in a thread of its own: the answer and when it arrived."""

    def __init__(self, url: str, key: str, wait: int):
        super().__init__(name="long-poll", daemon=True)
        self.url, self.key, self.wait = url, key, wait
        self.response: httpx.Response | None = None
        self.started = self.finished = 0.0

    def run(self):
        self.started = time.monotonic()
        self.response = httpx.get(
            self.url,
            params={"wait": self.wait},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=self.wait + 10,
        )
        self.finished = time.monotonic()


def _poll(server, approval, key, wait) -> Poll:
    poll = Poll(f"{server.url}/api/v1/approvals/{approval.id}", key, wait)
    poll.start()
    return poll


def test_a_decision_wakes_the_long_poll_at_once(asgi_server, agent, session, agent_key, reviewer):
    approval = propose_needing_approval(agent, session)
    poll = _poll(asgi_server, approval, agent_key, wait=20)
    time.sleep(0.6)  # the poll is waiting on the server
    assert poll.is_alive()
    decided_at = time.monotonic()
    services.decide(approval, by=reviewer, decision="approve", comment="go")
    poll.join(10)
    body = poll.response.json()
    assert poll.response.status_code == 200 and body["status"] == "approved"
    assert body["decided_by"] == "rita" and body["comment"] == "go"
    # Woken by the hint, not by a timer: a fraction of a second after the commit.
    assert poll.finished - decided_at < 0.5, poll.finished - decided_at


class BrokenLayer:
    """A channel layer whose backend is down (Redis stopped): every call fails."""

    def __init__(self, fail_on: str):
        self.fail_on = fail_on
        self.calls: list[str] = []

    async def new_channel(self, prefix="specific."):
        self.calls.append("new_channel")
        return "specific.broken!x"

    async def group_add(self, group, channel):
        self.calls.append("group_add")
        if self.fail_on == "subscribe":
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def receive(self, channel):
        self.calls.append("receive")
        raise ConnectionError("Connection closed by server.")

    async def group_discard(self, group, channel):
        self.calls.append("group_discard")
        raise ConnectionError("Connection closed by server.")


@pytest.mark.parametrize("fail_on", ["subscribe", "receive"])
def test_without_the_channel_layer_the_long_poll_falls_back_to_reading_the_database(
    asgi_server, agent, session, agent_key, reviewer, monkeypatch, fail_on
):
    broken = BrokenLayer(fail_on)
    monkeypatch.setattr(longpoll, "get_channel_layer", lambda: broken)
    approval = propose_needing_approval(agent, session)
    poll = _poll(asgi_server, approval, agent_key, wait=20)
    time.sleep(0.6)
    assert poll.is_alive()  # still waiting, not a 500
    decided_at = time.monotonic()
    services.decide(approval, by=reviewer, decision="reject", comment="not today")
    poll.join(10)
    assert poll.response.status_code == 200, poll.response.text
    assert poll.response.json()["status"] == "rejected"
    # Found by the next database read, within the fallback interval.
    assert poll.finished - decided_at < longpoll.FALLBACK_POLL_SECONDS + 1.0
    assert "group_add" in broken.calls
    assert ("receive" in broken.calls) == (fail_on == "receive")


def test_no_decision_means_pending_when_the_wait_runs_out(asgi_server, agent, session, agent_key):
    approval = propose_needing_approval(agent, session)
    poll = _poll(asgi_server, approval, agent_key, wait=1)
    poll.join(10)
    assert poll.response.json()["status"] == "pending"
    assert 0.95 <= poll.finished - poll.started < 3.0


def test_the_long_poll_reports_the_expiry_as_expired(asgi_server, agent, session, agent_key):
    approval = propose_needing_approval(agent, session)
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        expires_at=timezone.now() + timedelta(seconds=1)
    )
    poll = _poll(asgi_server, approval, agent_key, wait=20)
    poll.join(10)
    body = poll.response.json()
    # No periodic job ran: the read itself treats the past-due request as expired.
    assert body["status"] == "expired" and "decided_by" not in body
    assert poll.finished - poll.started < 3.0


def test_four_eyes_keeps_the_agent_waiting_until_the_second_approval(
    asgi_server, agent, session, agent_key, reviewer, reviewer2
):
    approval = propose_needing_approval(agent, session, severity="critical")
    poll = _poll(asgi_server, approval, agent_key, wait=20)
    time.sleep(0.5)
    services.decide(approval, by=reviewer, decision="approve")
    time.sleep(0.5)
    assert poll.is_alive()  # one approval of two: still pending
    services.decide(approval, by=reviewer2, decision="approve")
    poll.join(10)
    assert poll.response.json()["status"] == "approved"


def test_the_python_client_waits_through_the_long_poll(
    asgi_server, agent, session, agent_key, reviewer
):
    approval = propose_needing_approval(agent, session)
    threading.Timer(
        0.5,
        lambda: (services.decide(approval, by=reviewer, decision="approve"), connection.close()),
    ).start()
    with Warden(asgi_server.url, agent_key, timeout=5) as warden:
        status = warden.session().wait_for_approval(str(approval.id), timeout=20)
    assert status.approved and status.decided_by == "rita"


def test_a_cancelled_request_wakes_the_agent_with_cancelled(
    asgi_server, agent, session, agent_key, admin_user, make_agent
):
    approval = propose_needing_approval(agent, session)
    poll = _poll(asgi_server, approval, agent_key, wait=20)
    time.sleep(0.5)
    services.cancel(approval, by=admin_user, reason="no longer needed")
    poll.join(10)
    assert poll.response.json()["status"] == "cancelled"


def _database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_waiting_long_polls_hold_no_thread_and_no_connection(
    asgi_server, agent, session, agent_key, reviewer
):
    waiters = 20
    approvals = [
        propose_needing_approval(agent, session, target=f"vendor:{i}") for i in range(waiters)
    ]
    answered: dict[int, str] = {}

    async def wait_all():
        async with httpx.AsyncClient(
            base_url=asgi_server.url, headers={"Authorization": f"Bearer {agent_key}"}
        ) as client:

            async def wait_one(index, approval):
                response = await client.get(
                    f"/api/v1/approvals/{approval.id}", params={"wait": 20}, timeout=30
                )
                answered[index] = response.json()["status"]

            await asyncio.gather(*[wait_one(i, a) for i, a in enumerate(approvals)])

    baseline_threads = threading.active_count()
    postgres = connection.vendor == "postgresql"
    baseline_connections = _database_connections() if postgres else 0
    # All 20 requests from one client thread, so the count below is the server's.
    client = threading.Thread(target=lambda: asyncio.run(wait_all()), daemon=True)
    client.start()
    time.sleep(1.5)
    assert answered == {}  # all still waiting
    # The client thread, the read pool and the shared steps thread at most — not one per wait.
    grown = threading.active_count() - baseline_threads
    assert grown <= 1 + longpoll.READ_THREADS + 1, grown
    if postgres:
        assert _database_connections() - baseline_connections <= longpoll.READ_THREADS
    # They wait side by side, not one after the other: deciding the last one answers it
    # while the other nineteen keep waiting.
    services.decide(approvals[-1], by=reviewer, decision="approve")
    deadline = time.monotonic() + 3
    while waiters - 1 not in answered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answered == {waiters - 1: "approved"}
    for approval in approvals[:-1]:
        services.decide(approval, by=reviewer, decision="approve")
    client.join(15)
    assert answered == dict.fromkeys(range(waiters), "approved")


def test_only_waiting_approval_reads_count_as_long_polls():
    def scope(path, query):
        return {"type": "http", "path": path, "query_string": query}

    assert is_long_poll(scope("/api/v1/approvals/abc", b"wait=30"))
    assert not is_long_poll(scope("/api/v1/approvals/abc", b"wait=0"))
    assert not is_long_poll(scope("/api/v1/approvals/abc", b"wait=soon"))
    assert not is_long_poll(scope("/api/v1/approvals/abc", b""))
    assert not is_long_poll(scope("/api/v1/agents", b"wait=30"))
    assert not is_long_poll({"type": "websocket", "path": "/api/v1/approvals/x"})
