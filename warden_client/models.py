"""What the server answers, as typed values: :class:`Decision` and :class:`ApprovalStatus`.

Parsing is strict where safety depends on it — an unknown verdict or approval status is a
:class:`~warden_client.errors.WardenProtocolError`, never silently "allowed" — and lenient
elsewhere: fields the server adds later are kept in ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .errors import WardenProtocolError

__all__ = ["ApprovalState", "ApprovalStatus", "Decision", "Verdict"]


class Verdict(StrEnum):
    """The four verdicts of SPEC §3.1 (precedence HALT > BLOCK > REQUIRE_APPROVAL > ALLOW)."""

    ALLOW = "ALLOW"
    BLOCK = "BLOCK"
    HALT = "HALT"
    REQUIRE_APPROVAL = "REQUIRE_APPROVAL"


class ApprovalState(StrEnum):
    """``status`` of ``GET /api/v1/approvals/{id}`` (SPEC §9)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Decision:
    """Warden's answer to one proposed action (``POST /api/v1/sessions/{id}/actions``).

    ``args`` are the arguments the agent must use; when ``constrained`` is true they differ
    from what was proposed (e.g. PII redacted, SPEC §3.1). ``name`` is the proposed action
    name (the client's, not part of the response). ``approval_id`` is the request to wait on
    for REQUIRE_APPROVAL (None when the server opened none).
    """

    action_id: str
    verdict: Verdict
    reason: str
    source: str
    constrained: bool
    args: Any
    event_id: str | None
    approval_id: str | None = None
    approval_expires_at: datetime | None = None
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW

    @property
    def needs_approval(self) -> bool:
        return self.verdict is Verdict.REQUIRE_APPROVAL

    @classmethod
    def from_json(cls, body: Any, *, name: str = "") -> Decision:
        doc = _object(body, "action response")
        verdict = _enum(Verdict, doc.get("verdict"), "verdict", upper=True)
        # SPEC §9: ``approval_id`` is optional. A REQUIRE_APPROVAL without one (a server with
        # no approval queue) gives nothing to wait on: the decorator refuses to run the
        # action (ApprovalUnavailable).
        approval_id = _optional_str(doc, "approval_id")
        constrained = doc.get("constrained", False)
        if not isinstance(constrained, bool):
            raise WardenProtocolError(f"'constrained' is not a boolean: {constrained!r}")
        return cls(
            action_id=_required_str(doc, "action_id"),
            verdict=verdict,
            reason=_text(doc, "reason"),
            source=_text(doc, "source"),
            constrained=constrained,
            args=doc.get("args"),
            event_id=_optional_str(doc, "event_id"),
            approval_id=approval_id,
            approval_expires_at=_optional_time(doc, "approval_expires_at"),
            name=name,
            raw=doc,
        )


@dataclass(frozen=True)
class ApprovalStatus:
    """State of one approval request (``GET /api/v1/approvals/{id}``, SPEC §4, §9)."""

    approval_id: str
    status: ApprovalState
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def pending(self) -> bool:
        return self.status is ApprovalState.PENDING

    @property
    def approved(self) -> bool:
        return self.status is ApprovalState.APPROVED

    @classmethod
    def from_json(cls, body: Any, *, approval_id: str) -> ApprovalStatus:
        doc = _object(body, "approval response")
        return cls(
            approval_id=approval_id,
            status=_enum(ApprovalState, doc.get("status"), "status"),
            decided_by=_optional_str(doc, "decided_by"),
            decided_at=_optional_time(doc, "decided_at"),
            comment=_optional_str(doc, "comment"),
            raw=doc,
        )


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise WardenProtocolError(f"{what} is not a JSON object: {body!r:.200}")
    return body


def _enum(kind: type[Any], value: Any, key: str, *, upper: bool = False) -> Any:
    if not isinstance(value, str):
        raise WardenProtocolError(f"'{key}' is missing or not a string: {value!r}")
    try:
        return kind(value.upper() if upper else value)
    except ValueError:
        raise WardenProtocolError(f"unknown {key} {value!r}") from None


def _required_str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if value is None or value == "":
        raise WardenProtocolError(f"'{key}' is missing")
    return str(value)


def _optional_str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return None if value is None or value == "" else str(value)


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return "" if value is None else str(value)


def _optional_time(doc: dict[str, Any], key: str) -> datetime | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WardenProtocolError(f"'{key}' is not an RFC 3339 string: {value!r}")
    try:
        # RFC 3339 "Z" is accepted by fromisoformat from Python 3.11 on; be explicit anyway.
        return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise WardenProtocolError(f"'{key}' is not an RFC 3339 time: {value!r}") from None
