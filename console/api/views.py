"""The registry API (SPEC §9): agents, keys, containment, sessions, keys of the log.

Thin: each view validates input with a serializer and calls one service.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from console import services
from console.errors import Invalid, NotFound
from console.models import Agent, AgentSession, ApiKey

from .base import AgentEndpoint, ReasonSerializer, record_agent_denied
from .serializers import (
    AgentCreateSerializer,
    AgentListOutSerializer,
    AgentOutSerializer,
    AgentUpdateSerializer,
    ErrorSerializer,
    KeyCreatedOutSerializer,
    KeyCreateSerializer,
    KeyOutSerializer,
    SessionOpenedOutSerializer,
    SessionOpenSerializer,
    SessionOutSerializer,
    agent_document,
    key_document,
    session_document,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names each problem"),
    401: OpenApiResponse(ErrorSerializer, description="Missing or invalid credentials"),
    403: OpenApiResponse(ErrorSerializer, description="The caller's role does not allow this"),
    404: OpenApiResponse(ErrorSerializer, description="No such object"),
    409: OpenApiResponse(ErrorSerializer, description="Conflicts with the object's state"),
}


def _uuid(value, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(f"No such {what}.", code=f"{what}_not_found") from exc


def get_agent(agent_id) -> Agent:
    agent = Agent.objects.select_related("owner").filter(pk=_uuid(agent_id, "agent")).first()
    if agent is None:
        raise NotFound("No such agent.", code="agent_not_found")
    return agent


def _validated(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class AgentsView(APIView):
    permissions = {"GET": "read", "POST": "register_agent"}

    @extend_schema(
        operation_id="agents_list",
        responses={200: AgentListOutSerializer, **ERRORS},
        summary="List agents",
    )
    def get(self, request):
        agents = Agent.objects.select_related("owner").order_by("name")
        status_filter = request.query_params.get("status")
        if status_filter:
            if status_filter not in Agent.Status.values:
                raise Invalid(
                    "Unknown status.",
                    fields={"status": [f"One of {', '.join(Agent.Status.values)}."]},
                )
            agents = agents.filter(status=status_filter)
        return Response({"results": [agent_document(a) for a in agents]})

    @extend_schema(
        request=AgentCreateSerializer,
        responses={201: AgentOutSerializer, **ERRORS},
        summary="Register an agent",
    )
    def post(self, request):
        data = _validated(AgentCreateSerializer, request)
        agent = services.register_agent(
            name=data["name"],
            description=data["description"],
            scope=data["scope"],
            settings=data["settings"],
            by=request.user,
        )
        return Response(agent_document(agent), status=status.HTTP_201_CREATED)


class AgentView(APIView):
    permissions = {"GET": "read", "PATCH": "edit_agent"}

    @extend_schema(responses={200: AgentOutSerializer, **ERRORS}, summary="One agent")
    def get(self, request, agent_id):
        return Response(agent_document(get_agent(agent_id)))

    @extend_schema(
        request=AgentUpdateSerializer,
        responses={200: AgentOutSerializer, **ERRORS},
        summary="Change description, scope, settings or owner (reason required)",
    )
    def patch(self, request, agent_id):
        agent = get_agent(agent_id)
        data = _validated(AgentUpdateSerializer, request)
        owner = None
        if "owner" in data:
            owner = get_user_model().objects.filter(username=data["owner"], is_active=True).first()
            if owner is None:
                raise Invalid(
                    "No such operator.",
                    fields={"owner": ["No active operator with this username."]},
                )
        agent = services.update_agent(
            agent,
            by=request.user,
            reason=data["reason"],
            description=data.get("description"),
            scope=data.get("scope"),
            settings=data.get("settings"),
            owner=owner,
        )
        return Response(agent_document(agent))


class _ContainmentView(APIView):
    permission = "contain"
    service = staticmethod(services.pause_agent)

    def post(self, request, agent_id):
        agent = get_agent(agent_id)
        data = _validated(ReasonSerializer, request)
        agent = type(self).service(agent, by=request.user, reason=data["reason"])
        return Response(agent_document(agent))


_containment_schema = extend_schema(
    request=ReasonSerializer, responses={200: AgentOutSerializer, **ERRORS}
)


@_containment_schema
class PauseView(_ContainmentView):
    service = staticmethod(services.pause_agent)


@_containment_schema
class ResumeView(_ContainmentView):
    service = staticmethod(services.resume_agent)


@_containment_schema
class RevokeView(_ContainmentView):
    service = staticmethod(services.revoke_agent)


class KeysView(APIView):
    permissions = {"GET": "manage_keys", "POST": "manage_keys"}

    @extend_schema(
        responses={200: KeyOutSerializer(many=True), **ERRORS},
        summary="The agent's keys (no secrets)",
    )
    def get(self, request, agent_id):
        agent = get_agent(agent_id)
        return Response([key_document(k) for k in agent.keys.all()])

    @extend_schema(
        request=KeyCreateSerializer,
        responses={201: KeyCreatedOutSerializer, **ERRORS},
        summary="Issue a key (the key is shown once)",
    )
    def post(self, request, agent_id):
        agent = get_agent(agent_id)
        data = _validated(KeyCreateSerializer, request) if request.data else {"label": ""}
        key, full = services.issue_key(agent, by=request.user, label=data["label"])
        return Response(
            {"id": str(key.id), "key": full, "prefix": key.prefix}, status=status.HTTP_201_CREATED
        )


class KeyView(APIView):
    permission = "manage_keys"

    @extend_schema(
        request=ReasonSerializer,
        responses={200: KeyOutSerializer, **ERRORS},
        summary="Revoke one key (reason in the body or ?reason=)",
    )
    def delete(self, request, agent_id, key_id):
        agent = get_agent(agent_id)
        key = ApiKey.objects.filter(agent=agent, pk=_uuid(key_id, "key")).first()
        if key is None:
            raise NotFound("No such key for this agent.", code="key_not_found")
        reason = request.data.get("reason") if isinstance(request.data, dict) else None
        reason = reason or request.query_params.get("reason") or "revoked by operator"
        key = services.revoke_key(key, by=request.user, reason=reason)
        return Response(key_document(key))


class HaltView(APIView):
    permission = "contain"

    @extend_schema(
        request=ReasonSerializer,
        responses={200: SessionOutSerializer, **ERRORS},
        summary="Halt one session",
    )
    def post(self, request, session_id):
        session = AgentSession.objects.filter(pk=_uuid(session_id, "session")).first()
        if session is None:
            raise NotFound("No such session.", code="session_not_found")
        data = _validated(ReasonSerializer, request)
        session = services.halt_session(session, by=request.user, reason=data["reason"])
        return Response(session_document(session))


# --- agent endpoints ------------------------------------------------------------------
class SessionsView(AgentEndpoint, APIView):
    @extend_schema(
        request=SessionOpenSerializer,
        responses={201: SessionOpenedOutSerializer, **ERRORS},
        summary="Open a session (agent key)",
    )
    def post(self, request):
        data = _validated(SessionOpenSerializer, request) if request.data else {"goal": ""}
        session = services.open_session(
            request.user.agent, workflow_id=data.get("workflow_id"), goal=data.get("goal", "")
        )
        return Response(
            {"session_id": str(session.id), "run_id": str(session.run_id)},
            status=status.HTTP_201_CREATED,
        )


def own_session(request, session_id) -> AgentSession:
    """The calling agent's session, or 404 (another agent's session is not disclosed)."""
    session = AgentSession.objects.filter(pk=_uuid(session_id, "session")).first()
    if session is None or session.agent_id != request.user.agent.id:
        if session is not None:
            record_agent_denied(
                request, "session belongs to another agent", session_id=str(session_id)
            )
        raise NotFound("No such session.", code="session_not_found")
    return session


class SessionEndView(AgentEndpoint, APIView):
    @extend_schema(
        request=None,
        responses={200: SessionOutSerializer, **ERRORS},
        summary="End a session (agent key)",
    )
    def post(self, request, session_id):
        session = services.end_session(own_session(request, session_id))
        return Response(session_document(session))
