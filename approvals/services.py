"""Every write to approval requests (SPEC §4), one function per change.

Each function opens the transaction (a savepoint when the caller already holds one, as the
authorization pipeline and ``revoke_agent`` do), makes the change so that races cannot both
win — a row lock, then a conditional update on ``status = 'pending'`` —, records its one
event in the same transaction, tells the trust app (``trust.hooks.event_recorded``), and
pushes hints after commit (``approvals.hints``).

* ``open_request`` — a REQUIRE_APPROVAL verdict opens a request (``approval.requested``);
* ``decide`` — a reviewer approves or rejects (``approval.decided``, one per vote);
* ``expire`` / ``expire_due`` — no decision in time (``approval.expired``);
* ``cancel`` / ``cancel_open_requests_for_agent`` — the request is moot
  (``approval.cancelled``), e.g. its agent was revoked;
* ``open_review`` / ``resolve_review`` — re-authorization reviews: Keep, Pause or Revoke;
* ``consume_approval`` — the approved action runs once (marked by the result report, whose
  ``action.completed`` event records it).

Rules (SPEC §4): only the first decision counts, a later one gets 409; the agent's owner may
not decide (separation of duties); priority critical or effective tier 4 needs two distinct
approvers and one rejection rejects; a reason is required to reject; a past-due request is
expired, whatever its stored status says (fail closed).
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import record
from console.errors import Conflict, Forbidden, Invalid, NotFound
from console.models import Agent, AgentSession
from console.validation import require_reason
from trust.hooks import event_recorded

from . import hints, rules
from .models import ApprovalDecision, ApprovalRequest

log = logging.getLogger("warden.approvals")

SYSTEM_ACTOR = "system:approvals"
MAX_COMMENT = 2000
Status = ApprovalRequest.Status
Kind = ApprovalRequest.Kind


def _actor(by) -> str:
    return by if isinstance(by, str) else f"user:{by.get_username()}"


def _sla_seconds() -> int:
    return int(getattr(settings, "WARDEN_APPROVAL_SLA_SECONDS", rules.DEFAULT_SLA_SECONDS))


def _session_fields(request: ApprovalRequest) -> dict:
    session = request.session
    if session is None:
        return {}
    return {
        "session_id": session.id,
        "workflow_id": session.workflow_id,
        "run_id": session.run_id,
    }


def _outcome_payload(request: ApprovalRequest) -> dict:
    return {
        "approval_id": request.id,
        "kind": request.kind,
        "action_id": request.action_id,
    }


def _comment(comment: Any) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise Invalid("The comment must be text.", fields={"comment": ["Expected a string."]})
    if len(comment) > MAX_COMMENT:
        raise Invalid(
            "The comment is too long.", fields={"comment": [f"At most {MAX_COMMENT} characters."]}
        )
    return comment.strip()


def _amount(amount: Any) -> Decimal | None:
    if amount is None or amount == "":
        return None
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise Invalid("The amount is not a number.", fields={"amount": ["Not a number."]}) from exc
    if not value.is_finite():
        raise Invalid("The amount is not a number.", fields={"amount": ["Not a number."]})
    return value


def _load(request) -> ApprovalRequest:
    pk = request.pk if isinstance(request, ApprovalRequest) else request
    found = (
        ApprovalRequest.objects.select_related("agent", "session", "agent__owner")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise NotFound("No such approval request.", code="approval_not_found")
    return found


def _refuse_owner(request: ApprovalRequest, by) -> None:
    """SPEC §4 separation of duties: the agent's owner may not decide its requests.

    The refusal is an ``access.denied`` event of its own (SPEC §8), committed even though the
    decision is not.
    """
    if request.agent.owner_id != by.pk:
        return
    with transaction.atomic():
        record(
            "access.denied",
            actor=_actor(by),
            agent_id=request.agent_id,
            result="denied",
            reason="separation of duties: the agent's owner may not decide its requests",
            payload={
                "method": "DECIDE",
                "path": f"approvals/{request.id}",
                "permission": "decide",
                "approval_id": request.id,
            },
        )
    raise Forbidden(
        "You own this agent; another reviewer must decide its requests (separation of duties).",
        code="separation_of_duties",
    )


def not_pending_error(request: ApprovalRequest, status: str | None = None) -> Conflict:
    """The 409 for a request that can no longer be decided (``status``: as read)."""
    status = status or request.status
    if status == Status.EXPIRED:
        return Conflict("This request expired before it was decided.", code="approval_expired")
    if status == Status.CANCELLED:
        return Conflict("This request was cancelled.", code="approval_cancelled")
    return Conflict(
        f"This request has already been decided ({Status(status).label.lower()}).",
        code="already_decided",
    )


# --- opening ---------------------------------------------------------------------------
def open_request(
    *,
    agent,
    session,
    action_id: Any,
    action_name: str,
    target: str,
    args_sha256: str,
    amount: Decimal | None,
    currency: str,
    reason: str,
    source: str,
    severity: str | None,
    effective_tier: int | None,
    args: Any = None,
) -> ApprovalRequest:
    """Open the ApprovalRequest bound to one proposed action (SPEC §4).

    Called by the pipeline inside the transaction that records ``action.evaluated`` with a
    REQUIRE_APPROVAL verdict; records ``approval.requested`` in the same transaction and
    pushes the queue hint after commit. ``args`` are the arguments as redacted (shown on the
    reviewer's card); ``args_sha256`` is the hash of the canonical arguments the agent sent,
    checked again by ``consume_approval``. Returns the request (its ``id`` and
    ``expires_at`` go into the proposal's response).
    """
    if severity is not None and severity not in rules.SEVERITIES:
        raise Invalid(
            "Unknown severity.",
            fields={"severity": [f"One of {', '.join(rules.SEVERITIES)}, or null."]},
        )
    current = Agent.objects.only("id", "approval_ttl_seconds", "effective_tier", "risk_tier").get(
        pk=agent.pk
    )
    tier = effective_tier if effective_tier is not None else current.effective_tier
    priority = rules.priority(severity, tier)
    now = timezone.now()
    at_risk, due = rules.sla_times(now, _sla_seconds())
    request = ApprovalRequest(
        kind=Kind.ACTION,
        agent_id=current.id,
        session=session,
        action_id=action_id,
        action_name=(action_name or "")[:200],
        target=(target or "")[:500],
        args_sha256=args_sha256 or "",
        args=args if args is not None else {},
        amount=_amount(amount),
        currency=(currency or "").upper()[:8],
        reason=reason or "",
        source=(source or "")[:200],
        severity=severity,
        effective_tier=tier,
        priority=priority,
        approvals_needed=rules.approvals_needed(priority, tier),
        created_at=now,
        expires_at=rules.expiry(now, current.approval_ttl_seconds),
        sla_at_risk_at=at_risk,
        sla_due_at=due,
    )
    try:
        with transaction.atomic():
            # Hints first: after commit they go out before the log's integration runs.
            hints.changed_on_commit(request, "requested")
            event = record(
                "approval.requested",
                actor=f"agent:{current.id}",
                agent_id=current.id,
                session_id=session.id,
                workflow_id=session.workflow_id,
                run_id=session.run_id,
                result="pending",
                reason=request.reason,
                payload={
                    "approval_id": request.id,
                    "kind": request.kind,
                    "action_id": request.action_id,
                    "action_name": request.action_name,
                    "target": request.target,
                    "args_sha256": request.args_sha256,
                    "amount": request.amount,
                    "currency": request.currency,
                    "source": request.source,
                    "severity": request.severity,
                    "priority": request.priority,
                    "approvals_needed": request.approvals_needed,
                    "effective_tier": request.effective_tier,
                    "expires_at": request.expires_at,
                    "sla_due_at": request.sla_due_at,
                },
            )
            request.event_id = event.id
            request.save(force_insert=True)
    except IntegrityError as exc:
        if ApprovalRequest.objects.filter(action_id=action_id).exists():
            raise Conflict(
                "This action already has an approval request.", code="approval_exists"
            ) from exc
        raise
    return request


def open_review(
    agent, *, cause_event_id: Any, kind: str, reason: str, previous_tier, new_tier
) -> ApprovalRequest:
    """Open a re-authorization review (kind ``reauthorization``) for the queue (SPEC §4, §5.4).

    Called by the trust app, inside its transaction, when an agent's trust tier worsens
    (``kind="tier_worsened"``) or a velocity alert fires (``kind="velocity"``). An agent has
    at most one open review: while one waits, a later call returns it unchanged (the
    ``tier.changed`` / ``alert.raised`` events keep the full story). Reviews do not expire.
    """
    existing = ApprovalRequest.objects.filter(
        agent_id=agent.pk, kind=Kind.REAUTHORIZATION, status=Status.PENDING
    ).first()
    if existing is not None:
        return existing
    tier = new_tier if new_tier is not None else Agent.objects.get(pk=agent.pk).effective_tier
    priority = rules.priority(None, tier)
    now = timezone.now()
    at_risk, due = rules.sla_times(now, _sla_seconds())
    review = ApprovalRequest(
        kind=Kind.REAUTHORIZATION,
        agent_id=agent.pk,
        action_name="re-authorization",
        reason=reason or "",
        source=f"trust:{kind}",
        effective_tier=tier,
        priority=priority,
        approvals_needed=1,
        created_at=now,
        expires_at=None,
        sla_at_risk_at=at_risk,
        sla_due_at=due,
        review_kind=(kind or "")[:32],
        cause_event_id=cause_event_id,
        previous_tier=previous_tier,
        new_tier=new_tier,
    )
    try:
        with transaction.atomic():
            hints.changed_on_commit(review, "requested")
            event = record(
                "approval.requested",
                actor="system:trust",
                agent_id=agent.pk,
                result="pending",
                reason=review.reason,
                payload={
                    "approval_id": review.id,
                    "kind": review.kind,
                    "action_id": None,
                    "review_kind": review.review_kind,
                    "cause_event_id": cause_event_id,
                    "previous_tier": previous_tier,
                    "new_tier": new_tier,
                    "priority": review.priority,
                    "approvals_needed": 1,
                    "effective_tier": tier,
                    "expires_at": None,
                    "sla_due_at": review.sla_due_at,
                },
            )
            review.event_id = event.id
            review.save(force_insert=True)
    except IntegrityError:
        # Another review of this agent was opened at the same moment: join it.
        existing = ApprovalRequest.objects.filter(
            agent_id=agent.pk, kind=Kind.REAUTHORIZATION, status=Status.PENDING
        ).first()
        if existing is None:
            raise
        return existing
    return review


# --- deciding --------------------------------------------------------------------------
def decide(request, *, by, decision: str, comment: str = "") -> ApprovalRequest:
    """Approve or reject an action request (SPEC §4); returns the request as it now is.

    Raises ``Invalid`` (unknown decision, reject without a reason), ``Forbidden``
    (``separation_of_duties``) and ``Conflict`` (``already_decided``, ``already_voted``,
    ``approval_expired``, ``approval_cancelled``, ``session_closed`` — the session that
    asked has ended or was halted, so the request is cancelled instead). Under four-eyes the
    first approval leaves the request pending (its event says ``approvals_given: 1``).
    """
    if decision not in ("approve", "reject"):
        raise Invalid("Unknown decision.", fields={"decision": ["One of approve, reject."]})
    comment = _comment(comment)
    if decision == "reject" and not comment:
        raise Invalid(
            "A reason is required to reject.",
            fields={"comment": ["A reason is required to reject."]},
        )
    current = _load(request)
    if current.kind != Kind.ACTION:
        raise Invalid(
            "A re-authorization review is resolved with keep, pause or revoke.",
            fields={"decision": ["One of keep, pause, revoke for a re-authorization review."]},
        )
    _refuse_owner(current, by)
    past_due = False
    session_closed = ""
    try:
        with transaction.atomic():
            # The row lock serialises deciders (SQLite: the IMMEDIATE transaction does);
            # whoever comes second reads the first one's outcome and gets 409.
            locked = (
                ApprovalRequest.objects.select_for_update(of=("self",))
                .select_related("session")
                .get(pk=current.pk)
            )
            now = timezone.now()
            if locked.status != Status.PENDING:
                raise not_pending_error(locked)
            if rules.is_past_due(locked.expires_at, now):
                past_due = True
            elif locked.session.status != AgentSession.Status.OPEN:
                # Ended, halted or revoked: the action can no longer run (SPEC §1).
                session_closed = locked.session.status
            else:
                _vote(locked, by=by, decision=decision, comment=comment, now=now)
    except IntegrityError as exc:  # the unique vote constraint, should the check be raced
        raise Conflict(
            "You have already approved this request; a second reviewer must decide.",
            code="already_voted",
        ) from exc
    if past_due:
        expire(current)
        raise Conflict("This request expired before it was decided.", code="approval_expired")
    if session_closed:
        cancel(current, by=SYSTEM_ACTOR, reason=f"the session that asked is {session_closed}")
        raise Conflict(
            f"The session that asked is {session_closed}; the request is cancelled.",
            code="session_closed",
        )
    return _load(current)


def _vote(locked: ApprovalRequest, *, by, decision: str, comment: str, now) -> None:
    if locked.decisions.filter(reviewer_id=by.pk).exists():
        raise Conflict(
            "You have already approved this request; a second reviewer must decide.",
            code="already_voted",
        )
    approvals = locked.decisions.filter(decision="approve").count()
    if decision == "reject":
        new_status = Status.REJECTED
    else:
        approvals += 1
        new_status = Status.APPROVED if approvals >= locked.approvals_needed else Status.PENDING
    if new_status != Status.PENDING:
        updated = ApprovalRequest.objects.filter(pk=locked.pk, status=Status.PENDING).update(
            status=new_status, decided_by=by, decided_at=now, comment=comment
        )
        if updated != 1:  # cannot happen under the lock; never let two outcomes stand
            raise not_pending_error(ApprovalRequest.objects.get(pk=locked.pk))
        locked.status = new_status
    hints.changed_on_commit(locked, "decided" if new_status != Status.PENDING else "voted")
    event = record(
        "approval.decided",
        actor=_actor(by),
        agent_id=locked.agent_id,
        **_session_fields(locked),
        result=new_status,
        reason=comment or f"{decision}d",
        payload={
            **_outcome_payload(locked),
            "decision": decision,
            "comment": comment,
            "decided_by": by.get_username(),
            "approvals_needed": locked.approvals_needed,
            "approvals_given": approvals,
        },
    )
    ApprovalDecision.objects.create(
        request=locked,
        reviewer=by,
        decision=decision,
        comment=comment,
        created_at=now,
        event_id=event.id,
    )
    event_recorded(event)


def resolve_review(request, *, by, outcome: str, comment: str = "") -> ApprovalRequest:
    """Resolve a re-authorization review: Keep (the stricter tier stays), Pause or Revoke.

    Pause and Revoke need a reason (as every containment step does, SPEC §1) and go through
    ``console.services.pause_agent`` / ``revoke_agent`` in the same transaction; the owner
    may not resolve a review of their own agent.
    """
    from console.services import pause_agent, revoke_agent

    if outcome not in ApprovalRequest.Outcome.values:
        raise Invalid("Unknown outcome.", fields={"decision": ["One of keep, pause, revoke."]})
    comment = _comment(comment)
    if outcome != "keep" and not comment:
        raise Invalid(
            f"A reason is required to {outcome}.",
            fields={"comment": [f"A reason is required to {outcome}."]},
        )
    current = _load(request)
    if current.kind != Kind.REAUTHORIZATION:
        raise Invalid(
            "An action request is decided with approve or reject.",
            fields={"decision": ["One of approve, reject for an action request."]},
        )
    _refuse_owner(current, by)
    with transaction.atomic():
        locked = ApprovalRequest.objects.select_for_update().get(pk=current.pk)
        if locked.status != Status.PENDING:
            raise not_pending_error(locked)
        now = timezone.now()
        ApprovalRequest.objects.filter(pk=locked.pk, status=Status.PENDING).update(
            status=Status.RESOLVED, outcome=outcome, decided_by=by, decided_at=now, comment=comment
        )
        locked.status = Status.RESOLVED
        hints.changed_on_commit(locked, "resolved")
        event = record(
            "approval.decided",
            actor=_actor(by),
            agent_id=locked.agent_id,
            result="success",
            reason=comment or outcome,
            payload={
                **_outcome_payload(locked),
                "decision": outcome,
                "comment": comment,
                "decided_by": by.get_username(),
                "approvals_needed": 1,
                "approvals_given": 1,
            },
        )
        ApprovalDecision.objects.create(
            request=locked,
            reviewer=by,
            decision=outcome,
            comment=comment,
            created_at=now,
            event_id=event.id,
        )
        event_recorded(event)
        agent = Agent.objects.get(pk=locked.agent_id)
        why = f"re-authorization review: {comment}"
        if outcome == "pause" and agent.status == Agent.Status.ACTIVE:
            pause_agent(agent, by=by, reason=why)
        elif outcome == "revoke" and agent.status != Agent.Status.REVOKED:
            revoke_agent(agent, by=by, reason=why)
    return _load(current)


# --- expiry and cancellation -----------------------------------------------------------
def expire(request, *, now=None) -> bool:
    """Expire one pending, past-due request (SPEC §4): rejected for the agent, told
    ``expired``. False when it is not (or no longer) pending and past due."""
    now = now or timezone.now()
    pk = request.pk if isinstance(request, ApprovalRequest) else request
    with transaction.atomic():
        updated = ApprovalRequest.objects.filter(
            pk=pk, status=Status.PENDING, expires_at__lte=now
        ).update(status=Status.EXPIRED, decided_at=F("expires_at"))
        if not updated:
            return False
        expired = ApprovalRequest.objects.select_related("session").get(pk=pk)
        hints.changed_on_commit(expired, "expired")
        event = record(
            "approval.expired",
            actor=SYSTEM_ACTOR,
            agent_id=expired.agent_id,
            **_session_fields(expired),
            result="expired",
            reason="no decision before the request expired",
            payload=_outcome_payload(expired),
        )
        event_recorded(event)
    return True


def expire_due(*, now=None, limit: int = 500) -> int:
    """Expire every pending request past its expiry (the periodic job); how many."""
    now = now or timezone.now()
    due = list(
        ApprovalRequest.objects.filter(status=Status.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:limit]
    )
    return sum(1 for pk in due if expire(pk, now=now))


def cancel(request, *, by, reason: str) -> bool:
    """Cancel one pending request that has become moot (``approval.cancelled``).

    ``by`` is the user (or a ``system:…`` actor) on whose behalf. False when the request is
    no longer pending, or is past due (then it is expired, not cancelled).
    """
    reason = require_reason(reason)
    pk = request.pk if isinstance(request, ApprovalRequest) else request
    with transaction.atomic():
        now = timezone.now()
        updated = (
            ApprovalRequest.objects.filter(pk=pk, status=Status.PENDING)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .update(
                status=Status.CANCELLED,
                decided_at=now,
                decided_by=None if isinstance(by, str) else by,
                comment=reason,
            )
        )
        if not updated:
            return False
        cancelled = ApprovalRequest.objects.select_related("session").get(pk=pk)
        hints.changed_on_commit(cancelled, "cancelled")
        event = record(
            "approval.cancelled",
            actor=_actor(by),
            agent_id=cancelled.agent_id,
            **_session_fields(cancelled),
            result="cancelled",
            reason=reason,
            payload=_outcome_payload(cancelled),
        )
        event_recorded(event)
    return True


def cancel_open_requests_for_session(session, *, reason: str) -> int:
    """Cancel the pending action requests of a session that has just closed.

    Called by ``console.services`` inside the transaction that ends, halts or revokes the
    session: the action could no longer run (an approval is used by the session that
    asked, SPEC §4), so the request leaves the queue at once instead of waiting for a
    reviewer to find it moot.
    """
    pending = list(
        ApprovalRequest.objects.filter(
            session_id=session.pk, kind=Kind.ACTION, status=Status.PENDING
        ).values_list("id", flat=True)
    )
    return sum(1 for pk in pending if cancel(pk, by=SYSTEM_ACTOR, reason=reason))


def cancel_open_requests_for_agent(agent, *, by, reason: str) -> int:
    """Cancel every open approval request (and review) of a revoked agent (SPEC §1).

    Called by ``console.services.revoke_agent`` inside its transaction; each request is
    one ``approval.cancelled`` event and leaves every open queue page after commit.
    """
    with transaction.atomic():
        pending = list(
            ApprovalRequest.objects.select_for_update()
            .filter(agent_id=agent.pk, status=Status.PENDING)
            .order_by("created_at")
            .values_list("id", flat=True)
        )
        return sum(1 for pk in pending if cancel(pk, by=by, reason=reason))


# --- single use ------------------------------------------------------------------------
def consume_approval(*, action_id: Any, session, args_sha256: str) -> bool:
    """Use the approval of an action once, when the agent reports its result (SPEC §4).

    True when the action's request is approved, was asked by this ``session``, has the same
    argument hash and was not used before (a conditional update marks it used); False
    otherwise. The caller's ``action.completed`` event (which carries ``args_sha256``) is
    the record of this use.
    """
    if not args_sha256:
        return False
    session_id = getattr(session, "pk", session)
    updated = ApprovalRequest.objects.filter(
        kind=Kind.ACTION,
        action_id=action_id,
        session_id=session_id,
        args_sha256=args_sha256,
        status=Status.APPROVED,
        used_at__isnull=True,
    ).update(used_at=timezone.now())
    return updated == 1
