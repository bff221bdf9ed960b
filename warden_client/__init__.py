"""warden_client — the Python client for agents governed by Warden (SPEC §9).

Standard library plus ``httpx``; no Django. An agent opens a session, asks Warden before
each consequential action, waits for a human when asked to, and reports what happened::

    from decimal import Decimal
    from warden_client import (
        ApprovalExpired, ApprovalRejected, Blocked, Halted, Warden, WardenHTTPError,
    )

    warden = Warden("http://127.0.0.1:8000", "wdn_live_…", timeout=10, retries=3)

    with warden.session(goal="review this week's invoices", workflow_id="ap-2024-17") as s:

        @s.governed("invoice.read", target=lambda invoice_id: f"invoice:{invoice_id}")
        def read_invoice(invoice_id: str) -> dict:
            return erp.invoice(invoice_id)

        @s.governed(
            "contract.commit",
            target=lambda vendor, total: f"vendor:{vendor}",
            amount=lambda vendor, total: total,
            currency="USD",
            sensitive=True,
            approval_timeout=15 * 60,
        )
        def commit_contract(vendor: str, total: Decimal) -> str:
            return erp.commit(vendor, total)

        invoice = read_invoice("INV-1042")        # ALLOW: runs, result reported "ok"
        try:
            commit_contract("acme", Decimal("95000.00"))  # REQUIRE_APPROVAL: waits
        except (ApprovalRejected, ApprovalExpired) as refused:
            print("not committed:", refused.reason, refused.comment)
        except Blocked as blocked:
            print("blocked by", blocked.source, "-", blocked.reason)
    # the session is ended here, also if the block raised (a HALT has ended it already)

What the decorator does (``Session.governed``):

1. proposes the action — ``POST /api/v1/sessions/{id}/actions`` with the call's arguments
   by parameter name as ``args``, amounts as decimal strings, and an ``Idempotency-Key``
   that is reused on retries so a retry never creates a second action;
2. ALLOW → runs the function, with Warden's arguments when the answer is ``constrained``
   (e.g. PII redacted); REQUIRE_APPROVAL → long-polls ``GET /api/v1/approvals/{id}?wait=N``
   and runs it once approved; BLOCK → raises :class:`Blocked`; HALT → raises
   :class:`Halted` (the session is over);
3. reports the outcome — ``POST …/actions/{action_id}/result`` with ``ok`` and the return
   value, or ``error`` and the exception text (the exception is re-raised).

The same steps are available one by one: ``s.propose(...) -> Decision``,
``s.wait_for_approval(approval_id, timeout=...) -> ApprovalStatus`` and
``s.report(action_id, "ok", output)``.

Errors all derive from :class:`WardenError` and carry ``reason`` and ``source`` of the
verdict behind them. HTTP errors are :class:`WardenHTTPError` with the server's error body
as attributes::

    try:
        with warden.session(goal="nightly run") as s:
            ...
    except WardenHTTPError as exc:
        if exc.code == "agent_paused":      # SPEC §1: on-call paused the agent
            ...
"""

from .client import Session, Warden
from .errors import (
    ApprovalCancelled,
    ApprovalError,
    ApprovalExpired,
    ApprovalRejected,
    ApprovalTimeout,
    ApprovalUnavailable,
    Blocked,
    Halted,
    VerdictError,
    WardenConnectionError,
    WardenError,
    WardenHTTPError,
    WardenProtocolError,
)
from .models import ApprovalState, ApprovalStatus, Decision, Verdict

__version__ = "0.1.0"

__all__ = [
    "ApprovalCancelled",
    "ApprovalError",
    "ApprovalExpired",
    "ApprovalRejected",
    "ApprovalState",
    "ApprovalStatus",
    "ApprovalTimeout",
    "ApprovalUnavailable",
    "Blocked",
    "Decision",
    "Halted",
    "Session",
    "Verdict",
    "VerdictError",
    "Warden",
    "WardenConnectionError",
    "WardenError",
    "WardenHTTPError",
    "WardenProtocolError",
]
