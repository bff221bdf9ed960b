"""Waiting for a human (SPEC §4 agent side): the long-poll and every way it can end."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.client.fake_warden import Fault
from warden_client import (
    ApprovalCancelled,
    ApprovalError,
    ApprovalExpired,
    ApprovalRejected,
    ApprovalState,
    ApprovalTimeout,
    Verdict,
    WardenError,
)

APPROVALS = r"/api/v1/approvals/[^/]+"
RESULTS = r"/api/v1/sessions/[^/]+/actions/[^/]+/result"
NEEDS_APPROVAL = {
    "verdict": "REQUIRE_APPROVAL",
    "reason": "contract.commit amounts over USD 250,000 within 72h",
    "source": "rule:contract-cumulative",
}


def test_require_approval_waits_on_the_long_poll_then_runs_once_approved(fake, warden):
    fake.verdicts["contract.commit"] = NEEDS_APPROVAL
    fake.decide_after["contract.commit"] = (0.4, "approved", "ok, budgeted")
    ran = []
    with warden.session() as s:

        @s.governed("contract.commit", amount=lambda vendor, total: total, sensitive=True)
        def commit(vendor, total):
            ran.append(time.monotonic())
            return f"committed {vendor}"

        started = time.monotonic()
        assert commit("acme", "95000") == "committed acme"

    assert len(ran) == 1 and ran[0] - started >= 0.4  # ran only after the decision
    polls = fake.calls("GET", APPROVALS)
    # the server held the request until the decision: one poll was enough
    assert len(polls) == 1
    assert polls[0].query["wait"] == ["60"]
    (result_call,) = fake.calls("POST", RESULTS)
    assert result_call.body == {"status": "ok", "output": "committed acme"}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("rejected", ApprovalRejected),
        ("expired", ApprovalExpired),
        ("cancelled", ApprovalCancelled),
    ],
)
def test_an_approval_that_is_not_granted_raises_and_the_function_never_runs(
    fake, warden, status, error
):
    fake.verdicts["contract.commit"] = NEEDS_APPROVAL
    fake.decide_after["contract.commit"] = (0.1, status, "vendor not vetted")
    ran = []
    with warden.session() as s:

        @s.governed("contract.commit")
        def commit(vendor):
            ran.append(vendor)

        with pytest.raises(error) as caught:
            commit("globex")

    assert ran == []
    exc = caught.value
    assert isinstance(exc, ApprovalError) and isinstance(exc, WardenError)
    # the verdict's reason and source, plus what the reviewer said
    assert exc.reason == NEEDS_APPROVAL["reason"]
    assert exc.source == NEEDS_APPROVAL["source"]
    assert exc.status is ApprovalState(status)
    assert exc.comment == "vendor not vetted"
    assert isinstance(exc.decided_at, datetime)
    assert exc.decided_by == ("reviewer" if status == "rejected" else None)
    assert exc.decision is not None and exc.decision.verdict is Verdict.REQUIRE_APPROVAL
    assert exc.approval_id == exc.decision.approval_id
    assert fake.calls("POST", RESULTS) == []  # nothing ran, nothing to report


def test_expired_is_told_apart_from_rejected(fake, warden):
    fake.verdicts["contract.commit"] = NEEDS_APPROVAL
    fake.decide_after["contract.commit"] = (0.05, "expired", "")
    with warden.session() as s:
        decision = s.propose("contract.commit")
        with pytest.raises(ApprovalExpired) as caught:
            s.wait_for_approval(decision.approval_id)
    assert not isinstance(caught.value, ApprovalRejected)


def test_the_client_can_stop_waiting_while_the_request_is_still_pending(fake, warden):
    fake.verdicts["contract.commit"] = NEEDS_APPROVAL
    with warden.session() as s:
        decision = s.propose("contract.commit", target="vendor:acme")
        started = time.monotonic()
        with pytest.raises(ApprovalTimeout) as caught:
            s.wait_for_approval(decision.approval_id, timeout=1.5)
        elapsed = time.monotonic() - started

    assert 1.4 <= elapsed < 3.0
    assert caught.value.status is ApprovalState.PENDING
    assert caught.value.reason == NEEDS_APPROVAL["reason"]
    waits = [int(call.query["wait"][0]) for call in fake.calls("GET", APPROVALS)]
    assert waits[0] == 1 and all(0 <= w <= 60 for w in waits)


def test_propose_then_wait_step_by_step(fake, warden):
    fake.verdicts["contract.commit"] = NEEDS_APPROVAL
    with warden.session() as s:
        decision = s.propose("contract.commit", amount=250000, currency="USD")
        assert decision.needs_approval and not decision.allowed
        assert decision.verdict is Verdict.REQUIRE_APPROVAL
        assert isinstance(decision.approval_expires_at, datetime)
        assert decision.approval_expires_at.tzinfo is not None
        assert s.approval(decision.approval_id).pending  # one look, no wait

        fake.decide(decision.approval_id, "approved", by="alice", comment="fine")
        status = s.wait_for_approval(decision.approval_id, timeout=5)
        assert status.approved
        assert status.decided_by == "alice" and status.comment == "fine"
        s.report(decision.action_id, "ok", output={"contract": "C-1"})

    assert fake.actions[decision.action_id]["result"] == {
        "status": "ok",
        "output": {"contract": "C-1"},
    }


def test_a_long_poll_is_woken_by_the_decision_not_by_its_timeout(fake, warden):
    fake.verdicts["contract.commit"] = NEEDS_APPROVAL
    fake.decide_after["contract.commit"] = (0.3, "approved", "")
    with warden.session() as s:
        decision = s.propose("contract.commit")
        started = time.monotonic()
        status = s.approval(decision.approval_id, wait=60)
        elapsed = time.monotonic() - started
    assert status.approved
    assert elapsed < 5


def test_a_server_that_answers_pending_at_once_is_not_polled_in_a_tight_loop(fake, warden):
    fake.verdicts["contract.commit"] = NEEDS_APPROVAL
    with warden.session() as s:
        decision = s.propose("contract.commit")
        # The fake honours ?wait; make it answer at once instead, as a careless proxy might.
        fake.faults += [
            Fault("GET", APPROVALS, "respond", 200, {"status": "pending"}) for _ in range(20)
        ]
        with pytest.raises(ApprovalTimeout):
            s.wait_for_approval(decision.approval_id, timeout=1.2)
    assert len(fake.calls("GET", APPROVALS)) <= 4
