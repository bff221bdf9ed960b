"""Every error the client raises; all derive from :class:`WardenError`.

Two families:

- **Verdict errors** say Warden refused the action: :class:`Blocked`, :class:`Halted`,
  :class:`ApprovalRejected`, :class:`ApprovalExpired`, :class:`ApprovalCancelled`
  (and :class:`ApprovalTimeout` when the client stopped waiting first,
  :class:`ApprovalUnavailable` when there was no approval request to wait on). They carry the
  verdict's ``reason`` and ``source`` (SPEC §3.1) and the :class:`~warden_client.Decision`.
- **Transport errors** say the conversation failed: :class:`WardenHTTPError` carries the
  server's ``{"error": {code, message, fields}}`` body as attributes (``code ==
  "agent_paused"``), :class:`WardenConnectionError` a network failure that outlived the
  retries, :class:`WardenProtocolError` a response that does not follow SPEC §9.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ApprovalStatus, Decision

__all__ = [
    "ApprovalCancelled",
    "ApprovalError",
    "ApprovalExpired",
    "ApprovalRejected",
    "ApprovalTimeout",
    "ApprovalUnavailable",
    "Blocked",
    "Halted",
    "VerdictError",
    "WardenConnectionError",
    "WardenError",
    "WardenHTTPError",
    "WardenProtocolError",
]


class WardenError(Exception):
    """Base of every client error.

    ``reason`` and ``source`` are the verdict's (SPEC §3.1) when a verdict is behind the
    error, else ``None``.
    """

    def __init__(
        self, message: str, *, reason: str | None = None, source: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.source = source


class WardenHTTPError(WardenError):
    """The server answered with an error status (SPEC §9 error body).

    ``status`` is the HTTP status; ``code``, ``message`` and ``fields`` come from
    ``{"error": {code, message, fields?}}``. A body that is not in that shape (a proxy's
    HTML page, say) gives ``code == "http_<status>"`` and the raw text as the message.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, Any] | None = None,
        body: Any = None,
        method: str = "",
        path: str = "",
    ) -> None:
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{status} {code}: {message}{where}")
        self.message = message
        self.status = status
        self.code = code
        self.fields = fields or {}
        self.body = body
        self.method = method
        self.path = path


class WardenConnectionError(WardenError):
    """The request could not be completed (network error or timeout) after every retry."""


class WardenProtocolError(WardenError):
    """The server's answer does not follow the SPEC §9 wire format."""


class VerdictError(WardenError):
    """Warden's verdict forbids running the action; ``decision`` is the full verdict."""

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        super().__init__(
            message or f"{decision.verdict.value} {decision.name}: {decision.reason}",
            reason=decision.reason,
            source=decision.source,
        )
        self.decision = decision
        self.action_id = decision.action_id


class Blocked(VerdictError):
    """BLOCK: this action must not run; the session continues (SPEC §3.1)."""


class Halted(VerdictError):
    """HALT: this action must not run and the session has ended (SPEC §1, §3.1)."""


class ApprovalUnavailable(VerdictError):
    """REQUIRE_APPROVAL, but the server opened no approval request to wait on (no approval
    queue installed): the action must not run (fail closed)."""


class ApprovalError(WardenError):
    """An approval request did not end in ``approved``.

    ``reason`` and ``source`` are those of the REQUIRE_APPROVAL verdict when the session
    knows it; the reviewer's words are in ``comment`` and ``decided_by``.
    """

    def __init__(
        self,
        approval: ApprovalStatus,
        decision: Decision | None = None,
        message: str | None = None,
    ) -> None:
        text = message or f"approval {approval.approval_id} {approval.status}"
        if approval.comment:
            text += f": {approval.comment}"
        super().__init__(
            text,
            reason=decision.reason if decision else None,
            source=decision.source if decision else None,
        )
        self.approval = approval
        self.decision = decision
        self.approval_id = approval.approval_id
        self.status = approval.status
        self.comment = approval.comment
        self.decided_by = approval.decided_by
        self.decided_at = approval.decided_at


class ApprovalRejected(ApprovalError):
    """A reviewer rejected the action (SPEC §4)."""


class ApprovalExpired(ApprovalError):
    """Nobody decided before the request expired; Warden treats it as rejected (SPEC §4)."""


class ApprovalCancelled(ApprovalError):
    """The request was cancelled (the agent was revoked or the session closed; SPEC §1)."""


class ApprovalTimeout(ApprovalError):
    """The client stopped waiting; the request is still ``pending`` on the server."""
