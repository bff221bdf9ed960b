"""Writes to approval requests (SPEC §4)."""

from __future__ import annotations


def cancel_open_requests_for_agent(agent, *, by, reason: str) -> int:
    """Cancel every open approval request of a revoked agent (SPEC §1).

    Called by ``console.services.revoke_agent`` inside its transaction. Approval requests
    do not exist yet (the approvals issue adds them), so there is nothing to cancel.
    """
    return 0
