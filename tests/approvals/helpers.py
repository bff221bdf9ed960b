"""Opening approval requests in tests, the way the authorization pipeline does.

``propose_needing_approval`` stands in for ``POST /api/v1/sessions/{id}/actions`` answering
REQUIRE_APPROVAL: in one transaction it records ``action.evaluated`` and opens the request
with ``approvals.services.open_request`` (DESIGN.md "Data flow of one governed action").
Once the proposal endpoint is on this branch, switch its body to a real API proposal with
the agent's key; the tests only need the ApprovalRequest back.
"""

from __future__ import annotations

import hashlib
import threading
import uuid

from django.db import connection, transaction

from approvals.models import ApprovalRequest
from approvals.services import open_request
from audit import canonical
from audit.services import record


def in_thread_of_its_own(fn, *args, **kwargs):
    """Run ``fn`` in a new thread (as a server request would) and return its result.

    Browser tests need it for every write: Playwright keeps an event loop in the test's
    thread, where the after-commit hints could not reach the channel layer.
    """
    box: dict = {}

    def run():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            connection.close()

    worker = threading.Thread(target=run, name="server-like")
    worker.start()
    worker.join(30)
    if "error" in box:
        raise box["error"]
    return box["result"]


def propose_needing_approval(
    agent,
    session,
    *,
    name: str = "contract.commit",
    target: str = "vendor:acme",
    args: dict | None = None,
    amount: str | None = "120000.00",
    currency: str = "USD",
    reason: str = "contract.commit amounts over USD 250,000 within 72h",
    source: str = "rule:contract-cumulative",
    severity: str | None = "major",
    effective_tier: int | None = None,
    in_thread: bool = False,
) -> ApprovalRequest:
    """A committed REQUIRE_APPROVAL proposal and its ApprovalRequest.

    ``in_thread`` runs it in a thread of its own, as a server request would (browser tests
    need it: Playwright keeps an event loop in the test's thread).
    """
    if in_thread:
        return in_thread_of_its_own(
            propose_needing_approval,
            agent,
            session,
            name=name,
            target=target,
            args=args,
            amount=amount,
            currency=currency,
            reason=reason,
            source=source,
            severity=severity,
            effective_tier=effective_tier,
        )
    args = args if args is not None else {"vendor": target, "amount": amount, "po": "PO-1"}
    digest = hashlib.sha256(canonical.dumps(args)).hexdigest()
    action_id = uuid.uuid4()
    tier = effective_tier if effective_tier is not None else agent.effective_tier
    with transaction.atomic():
        approval = open_request(
            agent=agent,
            session=session,
            action_id=action_id,
            action_name=name,
            target=target,
            args_sha256=digest,
            amount=amount,
            currency=currency,
            reason=reason,
            source=source,
            severity=severity,
            effective_tier=tier,
            args=args,
        )
        record(
            "action.evaluated",
            actor=agent.actor,
            agent_id=agent.id,
            session_id=session.id,
            workflow_id=session.workflow_id,
            run_id=session.run_id,
            verdict="REQUIRE_APPROVAL",
            result="pending",
            reason=reason,
            payload={
                "action_id": action_id,
                "source": source,
                "action": {
                    "name": name,
                    "target": target,
                    "args": args,
                    "args_sha256": digest,
                    "amount": amount,
                    "currency": currency,
                    "sensitive": True,
                    "parent_action_id": None,
                },
                "constrained": False,
                "in_scope": True,
                "layers": [
                    {
                        "layer": "rules",
                        "source": source,
                        "verdict": "REQUIRE_APPROVAL",
                        "reason": reason,
                        "mode": "enforce",
                        "severity": severity,
                    }
                ],
                "shadow_verdicts": [],
                "violation": None,
                "approval_id": approval.id,
                "effective_tier": tier,
            },
        )
    return approval
