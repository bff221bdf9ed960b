"""Event log API: events, checkpoints and the public keys (SPEC §6.3, §9)."""

from __future__ import annotations

import uuid

from django.http import JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from console.errors import Invalid, NotFound

from .keys import keyring
from .models import GovernanceEvent
from .selectors import event_document
from .services import latest_checkpoint

MAX_LIMIT = 500


def _uuid_param(request, name: str):
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise Invalid(f"{name} is not a UUID.", fields={name: ["Must be a UUID."]}) from exc


class EventsView(APIView):
    permission = "read"

    @extend_schema(
        summary="Events, oldest first, keyset-paginated with ?after=<cursor>",
        parameters=[
            OpenApiParameter("agent", str),
            OpenApiParameter("session", str),
            OpenApiParameter("event_type", str),
            OpenApiParameter("after", int),
            OpenApiParameter("limit", int),
        ],
        responses={200: dict},
    )
    def get(self, request):
        events = GovernanceEvent.objects.select_related("log").order_by("arrival")
        agent = _uuid_param(request, "agent")
        session = _uuid_param(request, "session")
        if agent:
            events = events.filter(agent_id=agent)
        if session:
            events = events.filter(session_id=session)
        if request.query_params.get("event_type"):
            events = events.filter(event_type=request.query_params["event_type"])
        try:
            after = int(request.query_params.get("after", 0))
            limit = int(request.query_params.get("limit", 100))
        except ValueError as exc:
            raise Invalid(
                "after and limit must be integers.",
                fields={"after": ["Must be an integer."], "limit": ["Must be an integer."]},
            ) from exc
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid("limit out of range.", fields={"limit": [f"From 1 to {MAX_LIMIT}."]})
        page = list(events.filter(arrival__gt=after)[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response(
            {
                "results": [event_document(e) for e in page],
                "next": page[-1].arrival if more and page else None,
            }
        )


class LatestCheckpointView(APIView):
    permission = "read"

    @extend_schema(
        summary="The latest signed tree head (SPEC §6.3 checkpoint shape)", responses={200: dict}
    )
    def get(self, request):
        checkpoint = latest_checkpoint()
        if checkpoint is None:
            raise NotFound("No checkpoint has been signed yet.", code="no_checkpoint")
        return Response(checkpoint.as_json())


@require_GET
def public_keys(request):
    """``/.well-known/warden-keys.json``: every public key ever used (public, no login)."""
    response = JsonResponse({"keys": [key.as_json() for key in keyring().public_keys()]})
    response["Cache-Control"] = "public, max-age=300"
    return response
