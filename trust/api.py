"""The trust API (SPEC §9).

* ``GET /api/v1/agents/{id}/trust-history?limit=N&before=ROW`` → the agent's TrustHistory
  rows, newest first, ``limit`` per page (1–200, default 50), keyset-paginated: ``next``
  is the URL of the following (older) page, or null.
* ``POST /api/v1/agents/{id}/trust/recalculate`` ``{reason?}`` (admin) → recomputes the
  agent's trust from the event log and records a ``manual_recalculation``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import StrictSerializer
from console.api.serializers import agent_document
from console.api.views import ERRORS, get_agent
from console.errors import Invalid

from . import selectors, services
from .models import TrustHistory

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def _number(value):
    return float(value) if value is not None else None


def _time(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def history_document(row: TrustHistory) -> dict:
    """One row as SPEC §9 lists it, plus its id, the risk-profile delta and timing."""
    return {
        "id": row.id,
        "previous_score": _number(row.previous_score),
        "new_score": _number(row.new_score),
        "previous_tier": row.previous_tier,
        "new_tier": row.new_tier,
        "behavioral_delta": _number(row.behavioral_delta),
        "alignment_delta": _number(row.alignment_delta),
        "risk_profile_delta": _number(row.risk_profile_delta),
        "change_type": row.change_type,
        "change_reason": row.change_reason,
        "evaluated_by": row.evaluated_by,
        "cause_event_id": str(row.cause_event_id) if row.cause_event_id else None,
        "event_id": str(row.event_id),
        "effective_at": _time(row.effective_at),
        "created_at": _time(row.created_at),
    }


class HistoryRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    previous_score = serializers.FloatField(allow_null=True)
    new_score = serializers.FloatField(allow_null=True)
    previous_tier = serializers.IntegerField(allow_null=True)
    new_tier = serializers.IntegerField(allow_null=True)
    behavioral_delta = serializers.FloatField()
    alignment_delta = serializers.FloatField()
    risk_profile_delta = serializers.FloatField()
    change_type = serializers.ChoiceField(choices=TrustHistory.ChangeType.choices)
    change_reason = serializers.CharField()
    evaluated_by = serializers.CharField(help_text="system:<task> or user:<name>")
    cause_event_id = serializers.UUIDField(allow_null=True)
    event_id = serializers.UUIDField()
    effective_at = serializers.DateTimeField(help_text="when the change took effect")
    created_at = serializers.DateTimeField(help_text="when the row was written")


class HistoryPageSerializer(serializers.Serializer):
    results = HistoryRowSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="URL of the next, older page")


class RecalculateSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RecalculatedOutSerializer(serializers.Serializer):
    history = HistoryRowSerializer()
    agent = serializers.DictField()


def _positive_int(request, name: str, *, default: int | None, maximum: int | None = None):
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer.", fields={name: ["An integer."]}) from None
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum else "at least 1"
        raise Invalid(f"{name} is out of range.", fields={name: [f"Must be {bound}."]})
    return value


class TrustHistoryView(APIView):
    permission = "read"

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description=f"rows per page, 1–{MAX_LIMIT}"),
            OpenApiParameter("before", int, description="only rows older than this row id"),
        ],
        responses={200: HistoryPageSerializer, **ERRORS},
        summary="An agent's trust history, newest first (SPEC §5.5)",
    )
    def get(self, request, agent_id):
        agent = get_agent(agent_id)
        limit = _positive_int(request, "limit", default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        before = _positive_int(request, "before", default=None)
        rows = selectors.history(agent, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_url = None
        if more:
            next_url = request.build_absolute_uri(
                f"{request.path}?{urlencode({'limit': limit, 'before': rows[-1].id})}"
            )
        return Response({"results": [history_document(row) for row in rows], "next": next_url})


class RecalculateView(APIView):
    permission = "recalculate_trust"

    @extend_schema(
        request=RecalculateSerializer,
        responses={201: RecalculatedOutSerializer, **ERRORS},
        summary="Recompute an agent's trust from the event log (admin)",
    )
    def post(self, request, agent_id):
        agent = get_agent(agent_id)
        serializer = RecalculateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = services.recalculate_trust(
            agent, by=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(
            {"history": history_document(row), "agent": agent_document(get_agent(agent.id))},
            status=status.HTTP_201_CREATED,
        )
