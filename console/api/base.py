"""Shared API building blocks: strict input serializers and permission classes."""

from __future__ import annotations

from django.db import transaction
from rest_framework import serializers
from rest_framework.permissions import BasePermission

from console.authentication import AgentKeyAuthentication


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, naming each (SPEC §9 bad input)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(dict.fromkeys(unknown, ["Unknown field."]))
        return super().to_internal_value(data)


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, allow_blank=False, trim_whitespace=True)


class IsAgent(BasePermission):
    """Agent-key endpoints: the caller must be an agent."""

    def has_permission(self, request, view) -> bool:
        return bool(getattr(request.user, "is_agent", False))


class AgentEndpoint:
    """Mixin for the agent-facing endpoints (``Authorization: Bearer wdn_live_…``)."""

    authentication_classes = [AgentKeyAuthentication]
    permission_classes = [IsAgent]


def record_agent_denied(request, reason: str, **payload) -> None:
    """An agent asked for something that is not its own (``access.denied``)."""
    from audit.services import record

    agent = request.user.agent
    with transaction.atomic():
        record(
            "access.denied",
            actor=agent.actor,
            agent_id=agent.id,
            result="denied",
            reason=reason,
            payload={"method": request.method, "path": request.path[:500], **payload},
        )
    request._warden_refusal_recorded = True


class RecordsRefusals:
    """Agent endpoints whose every refusal (a 4xx answer) is an ``access.denied`` event
    naming the error code — malformed JSON, wrong types, too large, closed session …
    (SPEC §9 bad input). Answers that are part of the normal protocol are not recorded."""

    quiet_codes = frozenset({"idempotency_in_progress"})

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        request = self.request
        user = getattr(request, "user", None)
        if (
            400 <= response.status_code < 500
            and getattr(user, "is_agent", False)
            and not getattr(request, "_warden_refusal_recorded", False)
        ):
            error = (
                (response.data or {}).get("error", {}) if isinstance(response.data, dict) else {}
            )
            code = error.get("code", "error")
            if code not in self.quiet_codes:
                record_agent_denied(
                    request,
                    f"{code}: {error.get('message', '')}"[:2000],
                    code=code,
                    status=response.status_code,
                    fields=sorted(error.get("fields") or {}),
                )
        return response
