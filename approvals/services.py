"""Writes to approval requests (SPEC §4).

The functions below are the contract the authorization pipeline and the trust app call.
Until the approval queue is installed they do nothing: ``open_request`` returns ``None``
(the verdict is still REQUIRE_APPROVAL, with no request to wait on) and
``consume_approval`` grants nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


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
):
    """Open the ApprovalRequest bound to one proposed action (SPEC §4).

    Called by the pipeline inside the transaction that records ``action.evaluated`` with a
    REQUIRE_APPROVAL verdict; records ``approval.requested`` in the same transaction and
    pushes the queue hint after commit. Returns the request (its ``id`` and ``expires_at``
    go into the proposal's response), or ``None`` while approvals are not installed.
    """
    return None


def consume_approval(*, action_id: Any, session, args_sha256: str) -> bool:
    """Use the approval of an action once, when the agent reports its result (SPEC §4).

    True when the action's request is approved, was asked by this ``session``, has the same
    argument hash and was not used before (a conditional update marks it used); False
    otherwise.
    """
    return False


def open_review(
    agent, *, cause_event_id: Any, kind: str, reason: str, previous_tier, new_tier
):
    """Open a re-authorization review (kind ``reauthorization``) for the queue (SPEC §4, §5.4).

    Called by the trust app, inside its transaction, when an agent's trust tier worsens
    (``kind="tier_worsened"``) or a velocity alert fires (``kind="velocity"``).
    """
    return None


def cancel_open_requests_for_agent(agent, *, by, reason: str) -> int:
    """Cancel every open approval request of a revoked agent (SPEC §1).

    Called by ``console.services.revoke_agent`` inside its transaction.
    """
    return 0
