"""The authorization API (SPEC §9): proposals and results (agent keys), and policies,
rules, guardrails and backtests (operators). Thin: each view validates with a serializer
and calls one service."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import AgentEndpoint, RecordsRefusals
from console.api.views import ERRORS, _uuid, get_agent, own_session
from console.errors import Invalid, NotFound

from . import selectors, services
from .models import Guardrail, Policy, Rule
from .runtime import request_sha256
from .serializers import (
    BacktestSerializer,
    GuardrailCreateSerializer,
    GuardrailUpdateSerializer,
    PolicyCreateSerializer,
    PolicyTestSerializer,
    PolicyUpdateSerializer,
    ProposalAnswerSerializer,
    ProposalSerializer,
    ResultAnswerSerializer,
    ResultSerializer,
    RuleBacktestSerializer,
    RuleCreateSerializer,
    RuleUpdateSerializer,
    guardrail_document,
    policy_document,
    rule_document,
)

MAX_KEY_LENGTH = 200
AGENT_ERRORS = {
    **ERRORS,
    413: OpenApiResponse(description="The body is larger than 256 KiB"),
    422: OpenApiResponse(description="Idempotency-Key reused with a different body"),
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than 256 KiB."
    warden_code = "payload_too_large"


def _body(request, serializer_class):
    """The validated body; 413 before reading anything larger than the limit."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise PayloadTooLarge()
    raw = request.data
    serializer = serializer_class(data=raw)
    serializer.is_valid(raise_exception=True)
    return raw, serializer.validated_data


def _idempotency_key(request, *, required: bool) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None or key == "":
        if required:
            raise Invalid(
                "Send an Idempotency-Key header (a fresh UUID per proposal, reused on retries).",
                code="idempotency_key_required",
                fields={"Idempotency-Key": ["This header is required."]},
            )
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Invalid(
            "The Idempotency-Key is not valid.",
            code="invalid_idempotency_key",
            fields={"Idempotency-Key": [f"At most {MAX_KEY_LENGTH} printable ASCII characters."]},
        )
    return key


# --- agent endpoints ---------------------------------------------------------------------
def _own_session(request, session_id):
    """The caller's session as ``(id, agent_id)`` only — the service locks and reads it —
    or 404 (another agent's session is not disclosed; that attempt is ``access.denied``)."""
    from django.db import connection

    from console.models import AgentSession

    session_uuid = _uuid(session_id, "session")
    meta = AgentSession._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT agent_id FROM {meta.db_table} WHERE id = %s",
            [meta.pk.get_db_prep_value(session_uuid, connection)],
        )
        row = cursor.fetchone()
    owner = meta.get_field("agent").to_python(row[0]) if row else None
    if owner != request.user.agent.id:
        return own_session(request, session_id)  # records the refusal and raises 404
    return AgentSession(id=session_uuid, agent_id=owner)


class ActionsView(RecordsRefusals, AgentEndpoint, APIView):
    @extend_schema(
        request=ProposalSerializer,
        responses={200: ProposalAnswerSerializer, **AGENT_ERRORS},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)
        ],
        summary="Propose an action and get a verdict (agent key)",
    )
    def post(self, request, session_id):
        key = _idempotency_key(request, required=True)
        raw, data = _body(request, ProposalSerializer)
        session = _own_session(request, session_id)
        answer = services.evaluate_action(
            request.user.agent,
            session,
            name=data["name"],
            target=data.get("target"),
            args=data.get("args"),
            amount=data.get("amount"),
            currency=data.get("currency"),
            sensitive=data.get("sensitive", False),
            parent_action_id=data.get("parent_action_id"),
            idempotency_key=key,
            request_digest=request_sha256(session.id, raw),
        )
        return Response(answer)


class ResultView(RecordsRefusals, AgentEndpoint, APIView):
    @extend_schema(
        request=ResultSerializer,
        responses={200: ResultAnswerSerializer, **AGENT_ERRORS},
        summary="Report an action's result; output guardrails run here (agent key)",
    )
    def post(self, request, session_id, action_id):
        key = _idempotency_key(request, required=False)
        _, data = _body(request, ResultSerializer)
        session = _own_session(request, session_id)
        answer = services.report_result(
            request.user.agent,
            session,
            _uuid(action_id, "action"),
            status=data["status"],
            output=data.get("output"),
            idempotency_key=key,
        )
        return Response(answer)


# --- operator endpoints ------------------------------------------------------------------
def _validated(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _agent_or_none(value, field: str = "agent"):
    if value is None:
        return None
    from console.models import Agent

    agent = Agent.objects.filter(pk=value).first()
    if agent is None:
        raise Invalid("No such agent.", fields={field: ["No agent with this id."]})
    return agent


def _get(model, object_id, what: str):
    obj = (
        model.objects.select_related("agent")
        .filter(pk=_uuid(object_id, what), deleted_at__isnull=True)
        .first()
    )
    if obj is None:
        raise NotFound(f"No such {what}.", code=f"{what}_not_found")
    return obj


def _listing(request, queryset, document):
    agent_id = request.query_params.get("agent")
    if agent_id:
        queryset = queryset.filter(agent_id=_uuid(agent_id, "agent"))
    return Response({"results": [document(obj) for obj in queryset]})


class PoliciesView(APIView):
    permissions = {"GET": "read", "POST": "manage_policies"}

    @extend_schema(
        operation_id="policies_list",
        summary="Policies (Rego)",
        responses={
            200: OpenApiResponse(description="{results: [policy]}"),
            401: ERRORS[401],
            403: ERRORS[403],
        },
    )
    def get(self, request):
        return _listing(request, selectors.live_policies().order_by("name"), policy_document)

    @extend_schema(
        request=PolicyCreateSerializer,
        responses={201: OpenApiResponse(description="policy"), **ERRORS},
        summary="Create a policy",
    )
    def post(self, request):
        data = _validated(PolicyCreateSerializer, request)
        policy = services.create_policy(
            by=request.user,
            name=data["name"],
            module=data["module"],
            agent=_agent_or_none(data["agent"]),
            mode=data["mode"],
            description=data["description"],
        )
        return Response(policy_document(policy), status=status.HTTP_201_CREATED)


class PolicyView(APIView):
    permissions = {"GET": "read", "PATCH": "manage_policies", "DELETE": "manage_policies"}

    @extend_schema(
        summary="One policy", responses={200: OpenApiResponse(description="policy"), **ERRORS}
    )
    def get(self, request, policy_id):
        return Response(policy_document(_get(Policy, policy_id, "policy")))

    @extend_schema(
        request=PolicyUpdateSerializer,
        responses={200: OpenApiResponse(description="policy"), **ERRORS},
        summary="Change a policy",
    )
    def patch(self, request, policy_id):
        policy = _get(Policy, policy_id, "policy")
        data = _validated(PolicyUpdateSerializer, request)
        extra = {"agent": _agent_or_none(data["agent"])} if "agent" in data else {}
        policy = services.update_policy(
            policy,
            by=request.user,
            name=data.get("name"),
            module=data.get("module"),
            mode=data.get("mode"),
            description=data.get("description"),
            reason=data.get("reason", ""),
            **extra,
        )
        return Response(policy_document(policy))

    @extend_schema(
        summary="Delete (disable and archive) a policy",
        responses={200: OpenApiResponse(description="policy"), **ERRORS},
    )
    def delete(self, request, policy_id):
        policy = services.delete_policy(_get(Policy, policy_id, "policy"), by=request.user)
        return Response(policy_document(policy))


def _backtest_args(data) -> dict:
    return {"agent": get_agent(data["agent"]), "start": data["from"], "end": data["to"]}


class PolicyBacktestView(APIView):
    permission = "manage_policies"

    @extend_schema(
        request=BacktestSerializer,
        responses={
            200: OpenApiResponse(description="counts per verdict with the actions"),
            **ERRORS,
        },
        summary="Backtest a policy",
    )
    def post(self, request, policy_id):
        policy = _get(Policy, policy_id, "policy")
        data = _validated(BacktestSerializer, request)
        result = services.backtest_policy(
            policy, by=request.user, module=data.get("module"), **_backtest_args(data)
        )
        return Response(result.as_json())


class PolicyTestView(APIView):
    permission = "manage_policies"

    @extend_schema(
        request=PolicyTestSerializer,
        responses={
            200: OpenApiResponse(description="{ok, verdict, reason, severity, error, problems}"),
            **ERRORS,
        },
        summary="Evaluate a module against an input document (changes nothing)",
    )
    def post(self, request):
        data = _validated(PolicyTestSerializer, request)
        return Response(services.test_policy(module=data["module"], input_document=data["input"]))


class RulesView(APIView):
    permissions = {"GET": "read", "POST": "manage_policies"}

    @extend_schema(
        operation_id="rules_list",
        summary="Behavioural rules",
        responses={
            200: OpenApiResponse(description="{results: [rule]}"),
            401: ERRORS[401],
            403: ERRORS[403],
        },
    )
    def get(self, request):
        return _listing(
            request, selectors.live_rules().order_by("-priority", "name"), rule_document
        )

    @extend_schema(
        request=RuleCreateSerializer,
        responses={201: OpenApiResponse(description="rule"), **ERRORS},
        summary="Create a rule",
    )
    def post(self, request):
        data = dict(_validated(RuleCreateSerializer, request))
        agent = _agent_or_none(data.pop("agent"))
        rule = services.create_rule(by=request.user, agent=agent, **data)
        return Response(rule_document(rule), status=status.HTTP_201_CREATED)


class RuleView(APIView):
    permissions = {"GET": "read", "PATCH": "manage_policies", "DELETE": "manage_policies"}

    @extend_schema(
        summary="One rule", responses={200: OpenApiResponse(description="rule"), **ERRORS}
    )
    def get(self, request, rule_id):
        return Response(rule_document(_get(Rule, rule_id, "rule")))

    @extend_schema(
        request=RuleUpdateSerializer,
        responses={200: OpenApiResponse(description="rule"), **ERRORS},
        summary="Change a rule",
    )
    def patch(self, request, rule_id):
        rule = _get(Rule, rule_id, "rule")
        data = dict(_validated(RuleUpdateSerializer, request))
        if "agent" in data:
            data["agent"] = _agent_or_none(data["agent"])
        rule = services.update_rule(rule, by=request.user, **data)
        return Response(rule_document(rule))

    @extend_schema(
        summary="Delete (disable and archive) a rule",
        responses={200: OpenApiResponse(description="rule"), **ERRORS},
    )
    def delete(self, request, rule_id):
        return Response(
            rule_document(services.delete_rule(_get(Rule, rule_id, "rule"), by=request.user))
        )


class RuleBacktestView(APIView):
    permission = "manage_policies"

    @extend_schema(
        request=RuleBacktestSerializer,
        responses={
            200: OpenApiResponse(description="counts per verdict with the actions"),
            **ERRORS,
        },
        summary="Backtest a rule",
    )
    def post(self, request, rule_id):
        rule = _get(Rule, rule_id, "rule")
        data = _validated(RuleBacktestSerializer, request)
        result = services.backtest_rule(
            rule, by=request.user, draft=data.get("draft"), **_backtest_args(data)
        )
        return Response(result.as_json())


class GuardrailsView(APIView):
    permissions = {"GET": "read", "POST": "manage_policies"}

    @extend_schema(
        operation_id="guardrails_list",
        summary="Guardrails (canary tokens are never shown)",
        responses={
            200: OpenApiResponse(description="{results: [guardrail]}"),
            401: ERRORS[401],
            403: ERRORS[403],
        },
    )
    def get(self, request):
        return _listing(request, selectors.live_guardrails().order_by("name"), guardrail_document)

    @extend_schema(
        request=GuardrailCreateSerializer,
        responses={201: OpenApiResponse(description="guardrail"), **ERRORS},
        summary="Create a guardrail",
    )
    def post(self, request):
        data = {
            k: v
            for k, v in _validated(GuardrailCreateSerializer, request).items()
            if v is not None or k == "agent"
        }
        agent = _agent_or_none(data.pop("agent"))
        guardrail = services.create_guardrail(by=request.user, agent=agent, **data)
        return Response(guardrail_document(guardrail), status=status.HTTP_201_CREATED)


class GuardrailView(APIView):
    permissions = {"GET": "read", "PATCH": "manage_policies", "DELETE": "manage_policies"}

    @extend_schema(
        summary="One guardrail", responses={200: OpenApiResponse(description="guardrail"), **ERRORS}
    )
    def get(self, request, guardrail_id):
        return Response(guardrail_document(_get(Guardrail, guardrail_id, "guardrail")))

    @extend_schema(
        request=GuardrailUpdateSerializer,
        responses={200: OpenApiResponse(description="guardrail"), **ERRORS},
        summary="Change a guardrail",
    )
    def patch(self, request, guardrail_id):
        guardrail = _get(Guardrail, guardrail_id, "guardrail")
        data = dict(_validated(GuardrailUpdateSerializer, request))
        if "agent" in data:
            data["agent"] = _agent_or_none(data["agent"])
        guardrail = services.update_guardrail(guardrail, by=request.user, **data)
        return Response(guardrail_document(guardrail))

    @extend_schema(
        summary="Delete (disable and archive) a guardrail",
        responses={200: OpenApiResponse(description="guardrail"), **ERRORS},
    )
    def delete(self, request, guardrail_id):
        guardrail = services.delete_guardrail(
            _get(Guardrail, guardrail_id, "guardrail"), by=request.user
        )
        return Response(guardrail_document(guardrail))
