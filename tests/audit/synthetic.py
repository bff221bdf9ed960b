"""Sessions' events as the authorization pipeline and the approval queue record them.

The pipeline (``action.evaluated`` / ``action.completed``) and approvals are built on other
branches; until they land, the audit tests produce the same events directly with
``audit.services.record`` and the payloads of ``docs/events.md``. Everything that fakes them
is in this module, so switching to the real services later touches only this file.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from audit.services import record
from console import services as console_services
from console.models import Agent, AgentSession

RESULT_OF = {"ALLOW": "success", "BLOCK": "denied", "HALT": "denied", "REQUIRE_APPROVAL": "pending"}


@dataclass
class Step:
    name: str
    target: str = ""
    verdict: str = "ALLOW"
    amount: str | None = None
    currency: str = "USD"
    args: dict = field(default_factory=dict)
    source: str = "tier"
    reason: str = ""
    severity: str | None = None  # violation severity for BLOCK/HALT
    approval: str | None = None  # approved | rejected | expired, for REQUIRE_APPROVAL
    completed: bool = True  # report the result (when the action ran)
    in_scope: bool = True
    shadow: list = field(default_factory=list)


def _sha(args: dict) -> str:
    return hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()


def action_payload(step: Step, action_id: str, approval_id: str | None, tier: int) -> dict:
    layers = [
        {
            "layer": "budgets",
            "source": "budget:session_spend",
            "verdict": "ALLOW",
            "reason": "",
            "mode": "enforce",
            "severity": None,
        },
        {
            "layer": "scope",
            "source": "scope",
            "verdict": "ALLOW" if step.in_scope else "BLOCK",
            "reason": "" if step.in_scope else f"{step.name} is excluded",
            "mode": "enforce",
            "severity": None if step.in_scope else "major",
        },
    ]
    if step.source not in ("scope", "tier"):
        layers.append(
            {
                "layer": "rules",
                "source": step.source,
                "verdict": step.verdict,
                "reason": step.reason,
                "mode": "enforce",
                "severity": step.severity,
            }
        )
    if step.source == "tier":
        layers.append(
            {
                "layer": "tier",
                "source": "tier",
                "verdict": step.verdict,
                "reason": step.reason,
                "mode": "enforce",
                "severity": None,
            }
        )
    violation = (
        {"severity": step.severity or ("critical" if step.verdict == "HALT" else "major")}
        if step.verdict in ("BLOCK", "HALT")
        else None
    )
    return {
        "action_id": action_id,
        "source": step.source,
        "action": {
            "name": step.name,
            "target": step.target,
            "args": step.args,
            "args_sha256": _sha(step.args),
            "amount": step.amount,
            "currency": step.currency if step.amount else None,
            "sensitive": step.name.startswith("contract."),
            "parent_action_id": None,
        },
        "constrained": False,
        "in_scope": step.in_scope,
        "layers": layers,
        "shadow_verdicts": step.shadow,
        "violation": violation,
        "approval_id": approval_id,
        "effective_tier": tier,
    }


def run_step(session: AgentSession, step: Step, *, reviewer: str = "rita") -> dict:
    """Record one proposal, its approval (if any) and its result; returns the ids."""
    agent = session.agent
    tier = agent.effective_tier or 2
    action_id = str(uuid.uuid4())
    approval_id = str(uuid.uuid4()) if step.verdict == "REQUIRE_APPROVAL" else None
    common = {
        "agent_id": agent.id,
        "session_id": session.id,
        "workflow_id": session.workflow_id,
        "run_id": session.run_id,
    }
    with transaction.atomic():
        record(
            "action.evaluated",
            actor=agent.actor,
            verdict=step.verdict,
            result=RESULT_OF[step.verdict],
            reason=step.reason or f"{step.verdict.lower()} by {step.source}",
            payload=action_payload(step, action_id, approval_id, tier),
            **common,
        )
        if approval_id:
            record(
                "approval.requested",
                actor="system:approvals",
                result="pending",
                reason=step.reason or "needs a human decision",
                payload={
                    "approval_id": approval_id,
                    "kind": "action",
                    "action_id": action_id,
                    "priority": "high",
                    "expires_at": "2026-11-21T14:23:00.000000Z",
                    "effective_tier": tier,
                },
                **common,
            )
    ran = step.verdict == "ALLOW"
    if approval_id and step.approval:
        with transaction.atomic():
            if step.approval == "expired":
                record(
                    "approval.expired",
                    actor="system:approvals",
                    result="expired",
                    reason="not decided in time",
                    payload={"approval_id": approval_id, "kind": "action", "action_id": action_id},
                    **common,
                )
            else:
                approved = step.approval == "approved"
                record(
                    "approval.decided",
                    actor=f"user:{reviewer}",
                    result="approved" if approved else "rejected",
                    reason="looks right" if approved else "vendor not vetted",
                    payload={
                        "approval_id": approval_id,
                        "kind": "action",
                        "action_id": action_id,
                        "decision": "approve" if approved else "reject",
                        "comment": "ok" if approved else "vendor not vetted",
                        "decided_by": reviewer,
                        "approvals_needed": 1,
                        "approvals_given": 1 if approved else 0,
                    },
                    **common,
                )
                ran = approved
    if ran and step.completed:
        with transaction.atomic():
            record(
                "action.completed",
                actor=agent.actor,
                result="success",
                reason="ok",
                payload={
                    "action_id": action_id,
                    "status": "ok",
                    "output": {"ok": True},
                    "args_sha256": _sha(step.args),
                },
                **common,
            )
    if step.verdict in ("ALLOW", "REQUIRE_APPROVAL"):
        spend = Decimal(step.amount) if step.amount and ran else Decimal("0")
        AgentSession.objects.filter(pk=session.pk).update(
            action_count=session.action_count + 1, spend_total=session.spend_total + spend
        )
        session.refresh_from_db()
    return {"action_id": action_id, "approval_id": approval_id}


def governed_session(
    agent: Agent, steps: list[Step], *, end: str | None = "ended", goal: str = "review invoices"
) -> AgentSession:
    """Open a session, run ``steps``, then end it (``ended``), halt it, or leave it open."""
    session = console_services.open_session(agent, workflow_id="wf-procurement", goal=goal)
    for step in steps:
        run_step(session, step)
    if end == "ended":
        console_services.end_session(session)
    elif end == "halted":
        console_services.halt_session(
            session, actor="system:pipeline", reason="rule contract-burst: 4th commit in 24 h"
        )
    session.refresh_from_db()
    return session


def procurement_steps() -> list[Step]:
    """A short version of shared/scenarios/procurement_drift.md."""
    return [
        Step("invoice.read", "vendor:acme", args={"invoice": "INV-1"}),
        Step("invoice.flag", "vendor:acme", args={"invoice": "INV-1", "why": "duplicate"}),
        Step(
            "contract.commit",
            "vendor:acme",
            "REQUIRE_APPROVAL",
            amount="95000.00",
            source="tier",
            reason="sensitive action at tier 3",
            approval="approved",
            args={"contract": "C-1", "email": "[redacted:email]"},
        ),
        Step(
            "contract.commit",
            "vendor:globex",
            "REQUIRE_APPROVAL",
            amount="120000.00",
            source="rule:first-seen-vendor",
            reason="vendor never seen before",
            approval="rejected",
            args={"contract": "C-2"},
        ),
        Step(
            "payment.release",
            "vendor:globex",
            "BLOCK",
            amount="120000.00",
            source="scope",
            reason="payment.* is excluded",
            severity="major",
            in_scope=False,
            args={"invoice": "INV-2"},
        ),
        Step(
            "contract.commit",
            "vendor:initech",
            "HALT",
            amount="180000.00",
            source="rule:contract-burst",
            reason="more than 3 contract.commit in 24 h",
            severity="critical",
            args={"contract": "C-3"},
        ),
    ]
