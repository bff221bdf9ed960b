"""Events that move trust, produced the way the owning services will produce them.

The authorization pipeline and the approval queue record these events (payloads as in
``docs/events.md``) and call ``trust.hooks.event_recorded(event)`` right after recording
them. Until those services are on this branch, the helpers below do exactly that with
``audit.services.record``; switching a helper to the real service is a one-place change.
Session ends and assessments already go through the real services.

Every helper runs its own transaction and executes the after-commit callbacks it
registered (so the eager ``recompute_trust`` task runs), whether or not the test itself
is wrapped in a transaction. ``at(moment)`` pins the clock, so tests can lay events out
over days and weeks.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

from django.db import transaction
from django.test import TestCase

from assessments.services import assess_agent
from audit.models import GovernanceEvent
from audit.services import record
from console import services as console_services
from console.models import Agent, AgentSession
from tests.assessments.vectors import BY_NAME, PROCUREMENT
from trust import hooks

T0 = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)  # a Monday morning, well after "now"
DAY = timedelta(days=1)


@contextlib.contextmanager
def at(moment: datetime):
    """Everything inside happens at ``moment`` (``django.utils.timezone.now`` pinned)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield moment


@contextlib.contextmanager
def committed():
    """One transaction whose after-commit callbacks (trust tasks, eager) run at its end."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        with transaction.atomic():
            yield


def _sha(args: dict) -> str:
    return hashlib.sha256(repr(sorted(args.items())).encode()).hexdigest()


def _recorded(event: GovernanceEvent) -> GovernanceEvent:
    hooks.event_recorded(event)
    return event


# --- the agent ------------------------------------------------------------------------
def register_assessed(
    by, name: str, *, vector: str = "procurement_agent", when=None, settings=None, scope=None
) -> Agent:
    """A registered agent with a real assessment (``assessment.completed`` in the log)."""
    answers = BY_NAME[vector]["answers"] if vector else PROCUREMENT["answers"]
    with at(when or T0):
        agent = console_services.register_agent(name=name, by=by, settings=settings, scope=scope)
        with TestCase.captureOnCommitCallbacks(execute=True):
            assess_agent(agent, answers=answers, by=by)
    return Agent.objects.get(pk=agent.pk)


def reassess(agent: Agent, by, *, vector: str, reason: str = "re-assessed") -> Agent:
    with TestCase.captureOnCommitCallbacks(execute=True):
        assess_agent(agent, answers=BY_NAME[vector]["answers"], by=by, reason=reason)
    return Agent.objects.get(pk=agent.pk)


# --- sessions (real registry services) ------------------------------------------------
def open_session(agent: Agent) -> AgentSession:
    return console_services.open_session(Agent.objects.get(pk=agent.pk))


def close_session(session: AgentSession, status: str = "ended") -> GovernanceEvent:
    """End (``ended``) or halt (``halted``) a session and hand its event to trust."""
    with committed():
        if status == "ended":
            console_services.end_session(session)
        elif status == "halted":
            console_services.halt_session(session, reason="HALT verdict", actor="system:authorize")
        else:
            raise ValueError(status)
        event = GovernanceEvent.objects.filter(
            session_id=session.id, event_type=f"session.{status}"
        ).latest("arrival")
        return _recorded(event)


# --- the pipeline (issue 4) -----------------------------------------------------------
def evaluated(
    agent: Agent,
    session: AgentSession | None,
    *,
    name: str = "invoice.read",
    target: str = "vendor:acme",
    verdict: str = "ALLOW",
    severity: str | None = None,
    source: str = "",
    in_scope: bool = True,
    amount: str | None = None,
    layer: str = "rules",
) -> GovernanceEvent:
    """``action.evaluated`` as the pipeline records it (docs/events.md).

    ``severity`` makes an enforced BLOCK/HALT a violation; scope refusals pass
    ``in_scope=False``.
    """
    action_id = uuid.uuid4()
    args = {"target": target, "n": str(action_id)[:8]}
    violation = {"severity": severity} if verdict in ("BLOCK", "HALT") and severity else None
    source = source or ("scope" if not in_scope else f"{layer}:test" if violation else "")
    result = {"ALLOW": "success", "REQUIRE_APPROVAL": "pending"}.get(verdict, "denied")
    with committed():
        event = record(
            "action.evaluated",
            actor=f"agent:{agent.id}",
            agent_id=agent.id,
            session_id=session.id if session else None,
            run_id=session.run_id if session else None,
            verdict=verdict,
            result=result,
            reason=f"{verdict.lower()} by {source or 'default'}",
            payload={
                "action_id": action_id,
                "source": source,
                "action": {
                    "name": name,
                    "target": target,
                    "args": args,
                    "args_sha256": _sha(args),
                    "amount": Decimal(amount) if amount is not None else None,
                    "currency": "USD" if amount is not None else None,
                    "sensitive": False,
                    "parent_action_id": None,
                },
                "constrained": False,
                "in_scope": in_scope,
                "layers": [
                    {
                        "layer": "scope" if not in_scope else layer,
                        "source": source or "scope",
                        "verdict": verdict,
                        "reason": "test",
                        "mode": "enforce",
                        "severity": severity,
                    }
                ],
                "shadow_verdicts": [],
                "violation": violation,
                "approval_id": None,
                "effective_tier": agent.effective_tier,
            },
        )
        return _recorded(event)


def violation(agent: Agent, session: AgentSession | None, severity: str = "major", **kwargs):
    verdict = kwargs.pop("verdict", "HALT" if severity == "critical" else "BLOCK")
    return evaluated(agent, session, verdict=verdict, severity=severity, **kwargs)


def completed_with_canary(agent: Agent, session: AgentSession, action_id) -> GovernanceEvent:
    """``action.completed`` whose output carried a canary token (a critical violation)."""
    with committed():
        event = record(
            "action.completed",
            actor=f"agent:{agent.id}",
            agent_id=agent.id,
            session_id=session.id,
            run_id=session.run_id,
            verdict="HALT",
            result="denied",
            reason="canary token in the output",
            payload={
                "action_id": action_id,
                "status": "ok",
                "output": {"text": "[redacted]"},
                "args_sha256": "0" * 64,
                "source": "guardrail:canary",
                "violation": {"severity": "critical"},
            },
        )
        return _recorded(event)


# --- the approval queue (issue 5) -----------------------------------------------------
def decided(
    agent: Agent, *, result: str = "rejected", kind: str = "action", by: str = "rita"
) -> GovernanceEvent:
    """``approval.decided`` (result = the request's state after the decision)."""
    approval_id = uuid.uuid4()
    decision = "reject" if result == "rejected" else "approve"
    with committed():
        event = record(
            "approval.decided",
            actor=f"user:{by}",
            agent_id=agent.id,
            result=result,
            reason=f"{decision}d",
            payload={
                "approval_id": approval_id,
                "kind": kind,
                "action_id": uuid.uuid4() if kind == "action" else None,
                "decision": decision,
                "comment": "",
                "decided_by": by,
                "approvals_needed": 1,
                "approvals_given": 1 if result == "approved" else 0,
            },
        )
        return _recorded(event)


def expired(agent: Agent, *, kind: str = "action") -> GovernanceEvent:
    with committed():
        event = record(
            "approval.expired",
            actor="system:approvals",
            agent_id=agent.id,
            result="expired",
            reason="expired unanswered",
            payload={"approval_id": uuid.uuid4(), "kind": kind, "action_id": uuid.uuid4()},
        )
        return _recorded(event)
