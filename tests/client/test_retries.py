"""Retries never do twice what should happen once (SPEC §9 Idempotency-Key)."""

from __future__ import annotations

import uuid

import pytest

from tests.client.fake_warden import Fault
from warden_client import Verdict, Warden, WardenConnectionError, WardenHTTPError

ACTIONS = r"/api/v1/sessions/[^/]+/actions"
SESSIONS = r"/api/v1/sessions"
APPROVALS = r"/api/v1/approvals/[^/]+"
RESULTS = r"/api/v1/sessions/[^/]+/actions/[^/]+/result"


def keys(calls):
    return [call.headers.get("idempotency-key") for call in calls]


def test_a_dropped_answer_is_retried_with_the_same_key_and_creates_one_action(fake, warden):
    fake.faults.append(Fault("POST", ACTIONS, "drop_after"))  # the action IS created
    with warden.session() as s:
        decision = s.propose("invoice.read", target="invoice:INV-1", args={"id": "INV-1"})

    sent = fake.calls("POST", ACTIONS)
    assert len(sent) == 2
    first, second = keys(sent)
    assert first == second and uuid.UUID(first).version == 4
    assert sent[0].body == sent[1].body
    assert len(fake.actions) == 1  # the retry got the first response, not a new action
    assert decision.action_id == next(iter(fake.actions))
    assert decision.verdict is Verdict.ALLOW


def test_a_governed_call_survives_a_dropped_answer_and_runs_once(fake, warden):
    fake.faults.append(Fault("POST", ACTIONS, "drop_after"))
    fake.faults.append(Fault("POST", RESULTS, "drop_after"))
    ran = []
    with warden.session() as s:

        @s.governed("invoice.flag")
        def flag(invoice_id):
            ran.append(invoice_id)

        flag("INV-2")

    assert ran == ["INV-2"]
    assert len(fake.actions) == 1
    results = fake.calls("POST", RESULTS)
    # the result is re-sent with the same key, so a server that honours it answers once
    assert len(results) == 2 and keys(results)[0] == keys(results)[1]
    (action,) = fake.actions.values()
    assert action["result"] == {"status": "ok"}


def test_a_5xx_is_retried_with_the_same_key(fake, warden):
    fake.faults.append(
        Fault(
            "POST", ACTIONS, "respond", 503, {"error": {"code": "unavailable", "message": "busy"}}
        )
    )
    fake.faults.append(Fault("POST", ACTIONS, "respond", 502, "<html>bad gateway</html>"))
    with warden.session() as s:
        s.propose("invoice.read")
    sent = fake.calls("POST", ACTIONS)
    assert len(sent) == 3 and len(set(keys(sent))) == 1
    assert len(fake.actions) == 1


def test_each_proposal_gets_its_own_key(fake, warden):
    with warden.session() as s:
        s.propose("invoice.read")
        s.propose("invoice.read")
    first, second = keys(fake.calls("POST", ACTIONS))
    assert first != second
    assert len(fake.actions) == 2


def test_409_in_progress_waits_and_asks_again_with_the_same_key(fake, warden):
    in_progress = {"error": {"code": "idempotency_in_progress", "message": "still running"}}
    fake.faults += [Fault("POST", ACTIONS, "respond", 409, in_progress) for _ in range(3)]
    with warden.session() as s:
        decision = s.propose("invoice.read")
    sent = fake.calls("POST", ACTIONS)
    assert len(sent) == 4 and len(set(keys(sent))) == 1
    assert list(fake.actions) == [decision.action_id]


def test_a_slow_first_attempt_times_out_then_the_retry_gets_its_answer(fake):
    # The fake keeps the key "in progress" for 0.9 s; the client gives up reading at 0.6 s,
    # retries with the same key, is told 409 idempotency_in_progress, waits, and finally
    # receives the first attempt's response.
    fake.action_delay.append(0.9)
    with Warden(fake.url, fake.key, timeout=0.6, retries=2, backoff=0.01) as warden:
        with warden.session() as s:
            decision = s.propose("contract.draft", target="vendor:acme")
    sent = fake.calls("POST", ACTIONS)
    assert len(sent) >= 3 and len(set(keys(sent))) == 1
    assert list(fake.actions) == [decision.action_id]


def test_409_in_progress_that_never_clears_is_raised(fake):
    in_progress = {"error": {"code": "idempotency_in_progress", "message": "still running"}}
    with Warden(fake.url, fake.key, timeout=0.3, retries=1, backoff=0.01) as warden:
        with warden.session() as s:
            fake.faults += [Fault("POST", ACTIONS, "respond", 409, in_progress) for _ in range(50)]
            with pytest.raises(WardenHTTPError) as caught:
                s.propose("invoice.read")
            fake.faults.clear()
    assert caught.value.status == 409 and caught.value.code == "idempotency_in_progress"
    assert fake.actions == {}


def test_retries_run_out(fake):
    with Warden(fake.url, fake.key, timeout=1, retries=2, backoff=0.01) as warden:
        with warden.session() as s:
            fake.faults += [Fault("POST", ACTIONS, "drop_before") for _ in range(3)]
            with pytest.raises(WardenConnectionError, match="3 attempt"):
                s.propose("invoice.read")
    assert len(fake.calls("POST", ACTIONS)) == 3
    assert fake.actions == {}


def test_a_4xx_is_not_retried(fake, warden):
    with warden.session() as s:
        fake.faults.append(
            Fault(
                "POST",
                ACTIONS,
                "respond",
                422,
                {"error": {"code": "idempotency_key_reused", "message": "no"}},
            )
        )
        with pytest.raises(WardenHTTPError) as caught:
            s.propose("invoice.read")
    assert caught.value.status == 422
    assert len(fake.calls("POST", ACTIONS)) == 1


def test_opening_a_session_is_not_repeated_once_the_request_may_have_arrived(fake, warden):
    # POST /sessions has no idempotency key: a second attempt could open a second session.
    fake.faults.append(Fault("POST", SESSIONS, "drop_after"))
    with pytest.raises(WardenConnectionError):
        warden.session().open()
    assert len(fake.calls("POST", SESSIONS)) == 1


def test_a_refused_connection_is_retried_even_for_opening_a_session(fake):
    # Nothing listens on this port (we just freed it): the request never left the client.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Warden(f"http://127.0.0.1:{port}", fake.key, retries=2, backoff=0.01) as warden:
        with pytest.raises(WardenConnectionError, match="3 attempt"):
            warden.session().open()


def test_429_is_retried_after_the_servers_delay_for_any_request(fake, warden):
    fake.faults.append(
        Fault(
            "POST",
            SESSIONS,
            "respond",
            429,
            {"error": {"code": "throttled", "message": "slow down"}},
            {"Retry-After": "0"},
        )
    )
    with warden.session() as s:
        assert s.session_id
    assert len(fake.calls("POST", SESSIONS)) == 2
    assert len(fake.sessions) == 1


def test_a_long_poll_is_retried_after_a_dropped_connection(fake, warden):
    fake.verdicts["contract.commit"] = {
        "verdict": "REQUIRE_APPROVAL",
        "reason": "r",
        "source": "tier",
    }
    with warden.session() as s:
        decision = s.propose("contract.commit")
        fake.decide(decision.approval_id, "approved")
        fake.faults.append(Fault("GET", APPROVALS, "drop_before"))
        assert s.wait_for_approval(decision.approval_id, timeout=5).approved
    assert len(fake.calls("GET", APPROVALS)) == 2
