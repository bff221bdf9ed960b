"""Input and output shapes of the registry API (SPEC §9)."""

from __future__ import annotations

from rest_framework import serializers

from console.models import Agent, AgentSession, ApiKey

from .base import StrictSerializer


def _number(value):
    return float(value) if value is not None else None


def agent_document(agent: Agent) -> dict:
    return {
        "id": str(agent.id),
        "name": agent.name,
        "description": agent.description,
        "owner": agent.owner.get_username(),
        "status": agent.status,
        "scope": agent.scope,
        "settings": agent.settings_document(),
        "assessed": agent.is_assessed,
        "risk_percent": _number(agent.risk_percent),
        "risk_tier": agent.risk_tier,
        "risk_profile_score": _number(agent.risk_profile_score),
        "behavioral": _number(agent.behavioral),
        "alignment": _number(agent.alignment),
        "trust_score": _number(agent.trust_score),
        "trust_tier": agent.trust_tier,
        "effective_tier": agent.effective_tier,
        "created_at": agent.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": agent.updated_at.isoformat().replace("+00:00", "Z"),
    }


def key_document(key: ApiKey) -> dict:
    return {
        "id": str(key.id),
        "prefix": key.prefix,
        "label": key.label,
        "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
        "revoked_at": key.revoked_at.isoformat().replace("+00:00", "Z") if key.revoked_at else None,
    }


def session_document(session: AgentSession) -> dict:
    return {
        "session_id": str(session.id),
        "run_id": str(session.run_id),
        "agent_id": str(session.agent_id),
        "workflow_id": session.workflow_id,
        "status": session.status,
        "started_at": session.started_at.isoformat().replace("+00:00", "Z"),
        "ended_at": session.ended_at.isoformat().replace("+00:00", "Z")
        if session.ended_at
        else None,
        "action_count": session.action_count,
        "spend_total": format(session.spend_total, "f"),
    }


class AgentCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(
        max_length=5000, allow_blank=True, required=False, default=""
    )
    scope = serializers.JSONField(required=False, allow_null=True, default=None)
    settings = serializers.JSONField(required=False, allow_null=True, default=None)


class AgentUpdateSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000)
    description = serializers.CharField(max_length=5000, allow_blank=True, required=False)
    scope = serializers.JSONField(required=False)
    settings = serializers.JSONField(required=False)
    owner = serializers.CharField(max_length=150, required=False)


class KeyCreateSerializer(StrictSerializer):
    label = serializers.CharField(max_length=100, allow_blank=True, required=False, default="")


class SessionOpenSerializer(StrictSerializer):
    workflow_id = serializers.CharField(
        max_length=200, required=False, allow_null=True, allow_blank=True
    )
    goal = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AgentOutSerializer(serializers.Serializer):
    """Documentation of ``agent_document`` for the OpenAPI schema."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField()
    status = serializers.ChoiceField(choices=Agent.Status.values)
    scope = serializers.JSONField()
    settings = serializers.JSONField()
    assessed = serializers.BooleanField()
    risk_percent = serializers.FloatField(allow_null=True)
    risk_tier = serializers.IntegerField(allow_null=True)
    risk_profile_score = serializers.FloatField(allow_null=True)
    behavioral = serializers.FloatField()
    alignment = serializers.FloatField()
    trust_score = serializers.FloatField(allow_null=True)
    trust_tier = serializers.IntegerField(allow_null=True)
    effective_tier = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AgentListOutSerializer(serializers.Serializer):
    results = AgentOutSerializer(many=True)


class KeyOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    prefix = serializers.CharField()
    label = serializers.CharField()
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class KeyCreatedOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    key = serializers.CharField(help_text="The full key. Shown once; store it now.")
    prefix = serializers.CharField()


class SessionOpenedOutSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    run_id = serializers.UUIDField()


class SessionOutSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    run_id = serializers.UUIDField()
    agent_id = serializers.UUIDField()
    workflow_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=AgentSession.Status.values)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    action_count = serializers.IntegerField()
    spend_total = serializers.CharField()


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
