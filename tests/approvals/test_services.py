"""SPEC §4 approval requests: opening, deciding once, separation of duties, four-eyes,
expiry, cancellation, single use, and re-authorization reviews."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from approvals import selectors, services
from approvals.models import ApprovalDecision, ApprovalRequest
from console import services as console_services
from console.errors import Conflict, Forbidden, Invalid
from console.models import Agent, AgentSession
from tests.approvals.helpers import propose_needing_approval
from tests.helpers import events_of, mark_assessed

pytestmark = pytest.mark.django_db


def _past_due(approval):
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


# --- opening ---------------------------------------------------------------------------
def test_open_request_binds_the_exact_action_and_records_its_event(agent, session):
    before = timezone.now()
    approval = propose_needing_approval(agent, session, severity="major")
    approval.refresh_from_db()
    assert approval.kind == "action" and approval.status == "pending"
    assert approval.session_id == session.id and approval.agent_id == agent.id
    assert approval.action_name == "contract.commit" and approval.target == "vendor:acme"
    assert len(approval.args_sha256) == 64 and approval.args["po"] == "PO-1"
    assert str(approval.amount) == "120000.00" and approval.currency == "USD"
    assert approval.source == "rule:contract-cumulative" and approval.severity == "major"
    # tier 2 + major → high; one approver; TTL 30 min; SLA 5 min (SPEC §4)
    assert approval.effective_tier == 2 and approval.priority == "high"
    assert approval.approvals_needed == 1
    ttl = (approval.expires_at - approval.created_at).total_seconds()
    assert ttl == 30 * 60 and approval.created_at >= before
    assert (approval.sla_due_at - approval.created_at).total_seconds() == 300
    assert (approval.sla_at_risk_at - approval.created_at).total_seconds() == 240

    (event,) = events_of("approval.requested")
    assert event.result == "pending" and event.actor == f"agent:{agent.id}"
    assert event.session_id == session.id and approval.event_id == event.id
    payload = event.payload
    assert payload["approval_id"] == str(approval.id) and payload["kind"] == "action"
    assert payload["action_id"] == str(approval.action_id)
    assert payload["priority"] == "high" and payload["effective_tier"] == 2
    assert payload["amount"] == "120000.00" and payload["args_sha256"] == approval.args_sha256
    assert payload["expires_at"].endswith("Z")


def test_the_agents_own_ttl_sets_the_expiry(agent, session, admin_user):
    console_services.update_agent(
        agent, by=admin_user, reason="short fuse", settings={"approval_ttl_seconds": 60}
    )
    approval = propose_needing_approval(agent, session)
    assert (approval.expires_at - approval.created_at).total_seconds() == 60


def test_critical_severity_or_tier_4_needs_two_approvers(agent, session, make_agent):
    critical = propose_needing_approval(agent, session, severity="critical")
    assert critical.priority == "critical" and critical.approvals_needed == 2
    strict = mark_assessed(make_agent("strict-agent"), tier=4)
    strict_session = console_services.open_session(strict)
    tier4 = propose_needing_approval(strict, strict_session, severity=None)
    assert tier4.priority == "critical" and tier4.approvals_needed == 2


def test_one_request_per_action(agent, session):
    approval = propose_needing_approval(agent, session)
    with pytest.raises(Conflict) as caught:
        services.open_request(
            agent=agent,
            session=session,
            action_id=approval.action_id,
            action_name="contract.commit",
            target="vendor:acme",
            args_sha256="0" * 64,
            amount=None,
            currency="",
            reason="again",
            source="tier",
            severity=None,
            effective_tier=2,
        )
    assert caught.value.code == "approval_exists"
    assert ApprovalRequest.objects.count() == 1


def test_an_unknown_severity_is_refused(agent, session):
    with pytest.raises(Invalid) as caught:
        propose_needing_approval(agent, session, severity="apocalyptic")
    assert "severity" in caught.value.fields


def test_the_queue_hint_goes_out_after_commit(
    agent, session, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("console.hints.send", lambda group, message: sent.append((group, message)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        approval = propose_needing_approval(agent, session)
    assert sent == []  # nothing before commit
    for callback in callbacks:
        callback()
    groups = {group for group, _ in sent}
    assert groups == {f"approval.{approval.id}", "approvals", "fleet"}
    queue_hint = next(m for g, m in sent if g == "approvals")
    assert queue_hint == {
        "topic": "approval",
        "kind": "requested",
        "approval_id": str(approval.id),
        "agent_id": str(agent.id),
        "status": "pending",
    }


# --- deciding --------------------------------------------------------------------------
def test_approve_decides_once_and_records_who_and_when(agent, session, reviewer, hooked):
    approval = propose_needing_approval(agent, session)
    decided = services.decide(approval, by=reviewer, decision="approve", comment="budgeted")
    assert decided.status == "approved" and decided.decided_by == reviewer
    assert decided.decided_at is not None and decided.comment == "budgeted"
    (event,) = events_of("approval.decided")
    assert event.result == "approved" and event.actor == "user:rita"
    assert event.session_id == session.id
    assert event.payload == {
        "approval_id": str(approval.id),
        "kind": "action",
        "action_id": str(approval.action_id),
        "decision": "approve",
        "comment": "budgeted",
        "decided_by": "rita",
        "approvals_needed": 1,
        "approvals_given": 1,
        "session_event": event.payload["session_event"],
    }
    assert hooked == [event]  # trust hears of the outcome
    (vote,) = ApprovalDecision.objects.all()
    assert vote.reviewer == reviewer and vote.event_id == event.id


def test_second_decision_is_refused(agent, session, reviewer, reviewer2):
    approval = propose_needing_approval(agent, session)
    services.decide(approval, by=reviewer, decision="approve")
    with pytest.raises(Conflict) as caught:
        services.decide(approval, by=reviewer2, decision="reject", comment="too late")
    assert caught.value.status == 409 and caught.value.code == "already_decided"
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"
    assert len(events_of("approval.decided")) == 1


def test_reject_needs_a_reason(agent, session, reviewer):
    approval = propose_needing_approval(agent, session)
    with pytest.raises(Invalid) as caught:
        services.decide(approval, by=reviewer, decision="reject", comment="   ")
    assert caught.value.fields == {"comment": ["A reason is required to reject."]}
    rejected = services.decide(approval, by=reviewer, decision="reject", comment="vendor unknown")
    assert rejected.status == "rejected" and rejected.comment == "vendor unknown"
    (event,) = events_of("approval.decided")
    assert event.result == "rejected" and event.reason == "vendor unknown"


def test_unknown_decision_is_refused(agent, session, reviewer):
    approval = propose_needing_approval(agent, session)
    with pytest.raises(Invalid) as caught:
        services.decide(approval, by=reviewer, decision="maybe")
    assert "decision" in caught.value.fields


def test_the_owner_may_not_decide_and_the_refusal_is_recorded(agent, session, owner):
    approval = propose_needing_approval(agent, session)
    with pytest.raises(Forbidden) as caught:
        services.decide(approval, by=owner, decision="approve")
    assert caught.value.status == 403 and caught.value.code == "separation_of_duties"
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"
    assert events_of("approval.decided") == []
    (denied,) = events_of("access.denied")
    assert denied.actor == "user:owner-olga" and denied.payload["approval_id"] == str(approval.id)


def test_four_eyes_needs_two_distinct_approvers(agent, session, reviewer, reviewer2, hooked):
    approval = propose_needing_approval(agent, session, severity="critical")
    first = services.decide(approval, by=reviewer, decision="approve", comment="ok by me")
    assert first.status == "pending" and first.decided_by is None
    with pytest.raises(Conflict) as caught:
        services.decide(approval, by=reviewer, decision="approve")
    assert caught.value.code == "already_voted"
    second = services.decide(approval, by=reviewer2, decision="approve", comment="agreed")
    assert second.status == "approved" and second.decided_by == reviewer2
    results = [(e.result, e.payload["approvals_given"]) for e in events_of("approval.decided")]
    assert results == [("pending", 1), ("approved", 2)]
    assert ApprovalDecision.objects.filter(request=approval).count() == 2


def test_under_four_eyes_one_rejection_rejects(agent, session, reviewer, reviewer2):
    approval = propose_needing_approval(agent, session, severity="critical")
    services.decide(approval, by=reviewer, decision="approve")
    rejected = services.decide(approval, by=reviewer2, decision="reject", comment="no")
    assert rejected.status == "rejected"


def test_a_vote_cannot_be_edited_or_deleted(agent, session, reviewer):
    approval = propose_needing_approval(agent, session)
    services.decide(approval, by=reviewer, decision="approve")
    vote = ApprovalDecision.objects.get()
    for statement in (
        "UPDATE approvals_approvaldecision SET decision = 'reject'",
        "DELETE FROM approvals_approvaldecision",
    ):
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert ApprovalDecision.objects.get().decision == vote.decision


def test_one_vote_per_reviewer_is_also_a_database_rule(agent, session, reviewer):
    approval = propose_needing_approval(agent, session, severity="critical")
    services.decide(approval, by=reviewer, decision="approve")
    vote = ApprovalDecision.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalDecision.objects.create(
            request=approval,
            reviewer=reviewer,
            decision="approve",
            created_at=timezone.now(),
            event_id=vote.event_id,
        )


# --- expiry ----------------------------------------------------------------------------
def test_reads_treat_a_past_due_request_as_expired(agent, session):
    approval = propose_needing_approval(agent, session)
    assert selectors.pending_count() == 1
    _past_due(approval)
    approval.refresh_from_db()
    assert approval.status == "pending"  # not yet recorded…
    assert selectors.effective_status(approval) == "expired"  # …but read as expired
    assert selectors.pending_count() == 0
    assert selectors.queue()[0] == []
    assert [r.id for r in selectors.search(status="expired")] == [approval.id]


def test_deciding_a_past_due_request_is_refused_and_records_the_expiry(
    agent, session, reviewer, hooked
):
    approval = propose_needing_approval(agent, session)
    _past_due(approval)
    with pytest.raises(Conflict) as caught:
        services.decide(approval, by=reviewer, decision="approve")
    assert caught.value.code == "approval_expired"
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "expired"
    assert events_of("approval.decided") == []
    (event,) = events_of("approval.expired")
    assert hooked == [event]


def test_expire_due_expires_only_what_is_due(agent, session, hooked):
    due = propose_needing_approval(agent, session)
    fresh = propose_needing_approval(agent, session, target="vendor:globex")
    _past_due(due)
    assert services.expire_due() == 1
    assert services.expire_due() == 0  # a second run finds nothing
    due.refresh_from_db()
    assert due.status == "expired" and due.decided_at == due.expires_at
    assert ApprovalRequest.objects.get(pk=fresh.pk).status == "pending"
    (event,) = events_of("approval.expired")
    assert event.result == "expired" and event.actor == "system:approvals"
    assert event.payload == {
        "approval_id": str(due.id),
        "kind": "action",
        "action_id": str(due.action_id),
        "session_event": event.payload["session_event"],
    }
    assert hooked == [event]


def test_an_expiry_cannot_overwrite_a_decision(agent, session, reviewer):
    approval = propose_needing_approval(agent, session)
    services.decide(approval, by=reviewer, decision="approve")
    _past_due(approval)
    assert services.expire(approval) is False
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"


@pytest.mark.parametrize("close", ["halt", "end"])
def test_closing_the_session_cancels_its_pending_requests(
    agent, session, reviewer, make_agent, close
):
    approval = propose_needing_approval(agent, session)
    decided = propose_needing_approval(agent, session, target="vendor:globex")
    services.decide(decided, by=reviewer, decision="reject", comment="no")
    other_session = console_services.open_session(agent)
    elsewhere = propose_needing_approval(agent, other_session)
    if close == "halt":
        console_services.halt_session(session, actor="system:test", reason="canary")
    else:
        console_services.end_session(session)
    status = "halted" if close == "halt" else "ended"
    approval.refresh_from_db()
    assert approval.status == "cancelled"
    assert approval.comment == f"the session that asked is {status}"
    assert ApprovalRequest.objects.get(pk=decided.pk).status == "rejected"
    assert ApprovalRequest.objects.get(pk=elsewhere.pk).status == "pending"
    cancelled = events_of("approval.cancelled")
    assert [e.payload["approval_id"] for e in cancelled] == [str(approval.pk)]
    assert cancelled[0].actor == "system:approvals"
    # A reviewer who had the card open is told it is gone.
    with pytest.raises(Conflict) as caught:
        services.decide(approval, by=reviewer, decision="approve")
    assert caught.value.code == "approval_cancelled"
    assert len(events_of("approval.decided")) == 1  # only the rejection


def test_a_request_whose_session_closed_unnoticed_is_cancelled_when_decided(
    agent, session, reviewer
):
    """The lazy path stays: a session closed behind the service's back (a crashed writer,
    a restore) still cannot have its action approved."""
    approval = propose_needing_approval(agent, session)
    AgentSession.objects.filter(pk=session.pk).update(status="halted")
    with pytest.raises(Conflict) as caught:
        services.decide(approval, by=reviewer, decision="approve")
    assert caught.value.code == "session_closed"
    approval.refresh_from_db()
    assert approval.status == "cancelled" and approval.comment == "the session that asked is halted"
    assert events_of("approval.decided") == []
    assert events_of("approval.cancelled")[0].actor == "system:approvals"


# --- cancellation ----------------------------------------------------------------------
def test_revoking_the_agent_cancels_its_open_requests(
    agent, session, admin_user, reviewer, make_agent, hooked
):
    open_one = propose_needing_approval(agent, session)
    decided = propose_needing_approval(agent, session, target="vendor:globex")
    services.decide(decided, by=reviewer, decision="reject", comment="no")
    other = make_agent("bystander")
    other_request = propose_needing_approval(other, console_services.open_session(other))
    console_services.revoke_agent(agent, by=admin_user, reason="rogue")
    assert ApprovalRequest.objects.get(pk=open_one.pk).status == "cancelled"
    assert ApprovalRequest.objects.get(pk=decided.pk).status == "rejected"
    assert ApprovalRequest.objects.get(pk=other_request.pk).status == "pending"
    (event,) = events_of("approval.cancelled")
    assert event.reason == "agent revoked: rogue" and event.actor == "user:root-admin"
    assert event.payload["approval_id"] == str(open_one.id)
    assert hooked[-1] == event
    assert AgentSession.objects.get(pk=session.pk).status == "revoked"


def test_cancel_needs_a_reason_and_happens_once(agent, session, admin_user):
    approval = propose_needing_approval(agent, session)
    with pytest.raises(Invalid):
        services.cancel(approval, by=admin_user, reason="")
    assert services.cancel(approval, by="system:test", reason="moot") is True
    assert services.cancel(approval, by="system:test", reason="moot") is False
    approval.refresh_from_db()
    assert approval.status == "cancelled" and approval.decided_by is None
    assert len(events_of("approval.cancelled")) == 1


# --- single use ------------------------------------------------------------------------
def test_an_approval_is_used_once_by_its_session_with_the_same_arguments(agent, session, reviewer):
    approval = propose_needing_approval(agent, session)
    args = {"action_id": approval.action_id, "args_sha256": approval.args_sha256}
    assert services.consume_approval(session=session, **args) is False  # not approved yet
    services.decide(approval, by=reviewer, decision="approve")
    other_session = console_services.open_session(agent)
    assert services.consume_approval(session=other_session, **args) is False
    assert (
        services.consume_approval(
            action_id=approval.action_id, session=session, args_sha256="f" * 64
        )
        is False
    )
    assert services.consume_approval(session=session, **args) is True
    assert services.consume_approval(session=session, **args) is False  # single use
    assert ApprovalRequest.objects.get(pk=approval.pk).used_at is not None


def test_a_rejected_or_expired_approval_grants_nothing(agent, session, reviewer):
    rejected = propose_needing_approval(agent, session)
    services.decide(rejected, by=reviewer, decision="reject", comment="no")
    expired = propose_needing_approval(agent, session, target="vendor:initech")
    _past_due(expired)
    services.expire_due()
    for approval in (rejected, expired):
        assert not services.consume_approval(
            action_id=approval.action_id, session=session, args_sha256=approval.args_sha256
        )


# --- re-authorization reviews ----------------------------------------------------------
def _review(agent):
    return services.open_review(
        agent,
        cause_event_id=None,
        kind="tier_worsened",
        reason="trust tier 2 → 3",
        previous_tier=2,
        new_tier=3,
    )


def test_a_review_joins_the_queue_without_expiry(agent):
    review = _review(agent)
    assert review.kind == "reauthorization" and review.expires_at is None
    assert review.priority == "high" and review.session_id is None
    assert _review(agent).pk == review.pk  # one open review per agent
    (event,) = events_of("approval.requested")
    assert event.actor == "system:trust" and event.payload["review_kind"] == "tier_worsened"
    assert event.payload["previous_tier"] == 2 and event.payload["new_tier"] == 3
    assert selectors.pending_count() == 1
    assert services.expire_due(now=timezone.now() + timedelta(days=30)) == 0


def test_keep_resolves_the_review(agent, reviewer, hooked):
    review = _review(agent)
    resolved = services.resolve_review(review, by=reviewer, outcome="keep")
    assert resolved.status == "resolved" and resolved.outcome == "keep"
    (event,) = events_of("approval.decided")
    assert event.result == "success" and event.payload["decision"] == "keep"
    assert event.payload["kind"] == "reauthorization"
    assert Agent.objects.get(pk=agent.pk).status == "active"
    assert hooked == [event]


def test_pause_from_a_review_pauses_the_agent(agent, reviewer):
    review = _review(agent)
    with pytest.raises(Invalid):
        services.resolve_review(review, by=reviewer, outcome="pause")  # needs a reason
    services.resolve_review(review, by=reviewer, outcome="pause", comment="drifting")
    assert Agent.objects.get(pk=agent.pk).status == "paused"
    (paused,) = events_of("agent.paused")
    assert paused.reason == "re-authorization review: drifting" and paused.actor == "user:rita"


def test_revoke_from_a_review_revokes_and_cancels_the_rest(agent, session, reviewer):
    pending = propose_needing_approval(agent, session)
    review = _review(agent)
    services.resolve_review(review, by=reviewer, outcome="revoke", comment="rogue")
    assert Agent.objects.get(pk=agent.pk).status == "revoked"
    assert ApprovalRequest.objects.get(pk=review.pk).outcome == "revoke"
    assert ApprovalRequest.objects.get(pk=pending.pk).status == "cancelled"


def test_reviews_and_actions_take_their_own_decisions(agent, session, reviewer, owner):
    review = _review(agent)
    with pytest.raises(Invalid):
        services.decide(review, by=reviewer, decision="approve")
    action = propose_needing_approval(agent, session)
    with pytest.raises(Invalid):
        services.resolve_review(action, by=reviewer, outcome="keep")
    with pytest.raises(Forbidden):
        services.resolve_review(review, by=owner, outcome="keep")
    services.resolve_review(review, by=reviewer, outcome="keep")
    with pytest.raises(Conflict):
        services.resolve_review(review, by=reviewer, outcome="keep")
