"""The approvals API (SPEC §9).

Operators:
* ``GET /api/v1/approvals?status=pending`` (any role) — the queue, most urgent first;
  ``status`` is any request status or ``all``; filters ``agent``, ``priority``, ``tier``,
  ``sla`` (ok|at_risk|breached), ``kind``; ``limit`` ≤ 500.
* ``POST /api/v1/approvals/{id}/decide`` ``{decision, comment}`` (reviewer) —
  ``approve | reject`` for an action request (reject needs the reason in ``comment``),
  ``keep | pause | revoke`` for a re-authorization review.

Agents:
* ``GET /api/v1/approvals/{id}?wait=N`` (agent key, its own requests only) →
  ``{approval_id, status, expires_at, decided_by?, decided_at?, comment?}``; with ``wait``
  (0–60 s) it answers as soon as the request leaves ``pending`` (``approvals.longpoll``).
"""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.timefmt import format_timestamp
from console.api.base import AgentEndpoint, StrictSerializer, record_agent_denied
from console.api.views import ERRORS
from console.errors import Invalid, NotFound

from . import selectors, services
from .models import ApprovalRequest

MAX_WAIT = 60
MAX_LIMIT = 500
Status = ApprovalRequest.Status


def _time(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def _money(value) -> str | None:
    return format(value, "f") if value is not None else None


def approval_document(request: ApprovalRequest, now: datetime | None = None) -> dict:
    """The operator's view of one request."""
    decisions = list(request.decisions.all())
    given = getattr(request, "approvals_given", None)
    if given is None:
        given = sum(1 for d in decisions if d.decision == "approve")
    agent = request.agent
    return {
        "id": str(request.id),
        "kind": request.kind,
        "status": selectors.effective_status(request, now),
        "agent": {
            "id": str(agent.id),
            "name": agent.name,
            "owner": agent.owner.get_username(),
            "status": agent.status,
            "effective_tier": agent.effective_tier,
            "trust_score": float(agent.trust_score) if agent.trust_score is not None else None,
        },
        "session_id": str(request.session_id) if request.session_id else None,
        "action_id": str(request.action_id) if request.action_id else None,
        "action_name": request.action_name,
        "target": request.target,
        "args": request.args,
        "args_sha256": request.args_sha256,
        "amount": _money(request.amount),
        "currency": request.currency,
        "reason": request.reason,
        "source": request.source,
        "severity": request.severity,
        "effective_tier": request.effective_tier,
        "priority": request.priority,
        "approvals_needed": request.approvals_needed,
        "approvals_given": given,
        "created_at": _time(request.created_at),
        "expires_at": _time(request.expires_at),
        "sla_due_at": _time(request.sla_due_at),
        "sla_state": selectors.sla_state(request, now),
        "decided_by": request.decided_by.get_username() if request.decided_by else None,
        "decided_at": _time(request.decided_at),
        "comment": request.comment,
        "used_at": _time(request.used_at),
        "decisions": [
            {
                "reviewer": d.reviewer.get_username(),
                "decision": d.decision,
                "comment": d.comment,
                "created_at": _time(d.created_at),
            }
            for d in decisions
        ],
        "review": (
            {
                "kind": request.review_kind,
                "cause_event_id": str(request.cause_event_id) if request.cause_event_id else None,
                "previous_tier": request.previous_tier,
                "new_tier": request.new_tier,
                "outcome": request.outcome or None,
            }
            if request.is_review
            else None
        ),
    }


def status_document(request: ApprovalRequest, now: datetime | None = None) -> dict:
    """What the agent is told (SPEC §9): a past-due request reads ``expired``."""
    status = selectors.effective_status(request, now)
    body: dict = {
        "approval_id": str(request.id),
        "status": status,
        "expires_at": _time(request.expires_at),
    }
    if status in (Status.APPROVED, Status.REJECTED) and request.decided_by is not None:
        body["decided_by"] = request.decided_by.get_username()
    decided_at = request.decided_at
    if status == Status.EXPIRED and decided_at is None:
        decided_at = request.expires_at
    if status != Status.PENDING and decided_at is not None:
        body["decided_at"] = _time(decided_at)
    if status != Status.PENDING and request.comment:
        body["comment"] = request.comment
    return body


def parse_wait(raw) -> int:
    """``?wait=N``: whole seconds, 0 to 60 (SPEC §4)."""
    if raw is None or raw == "":
        return 0
    try:
        wait = int(raw)
    except (TypeError, ValueError):
        wait = -1
    if not 0 <= wait <= MAX_WAIT:
        raise Invalid(
            "wait must be a whole number of seconds from 0 to 60.",
            fields={"wait": [f"An integer from 0 to {MAX_WAIT}."]},
        )
    return wait


# --- serializers (schema and input) ------------------------------------------------------
class DecideSerializer(StrictSerializer):
    decision = serializers.ChoiceField(
        choices=["approve", "reject", "keep", "pause", "revoke"],
        help_text="approve | reject (action requests); keep | pause | revoke (reviews)",
    )
    comment = serializers.CharField(
        max_length=services.MAX_COMMENT,
        allow_blank=True,
        required=False,
        default="",
        trim_whitespace=True,
        help_text="Optional when approving; the reason, required, when rejecting, pausing "
        "or revoking.",
    )


class ApprovalStatusOutSerializer(serializers.Serializer):
    approval_id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=["pending", "approved", "rejected", "expired", "cancelled"]
    )
    expires_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField(required=False)
    decided_at = serializers.DateTimeField(required=False)
    comment = serializers.CharField(required=False)


class ApprovalOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ApprovalRequest.Kind.values)
    status = serializers.ChoiceField(choices=Status.values)
    agent = serializers.DictField()
    session_id = serializers.UUIDField(allow_null=True)
    action_id = serializers.UUIDField(allow_null=True)
    action_name = serializers.CharField()
    target = serializers.CharField()
    args = serializers.JSONField()
    args_sha256 = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    reason = serializers.CharField()
    source = serializers.CharField()
    severity = serializers.CharField(allow_null=True)
    effective_tier = serializers.IntegerField(allow_null=True)
    priority = serializers.ChoiceField(choices=ApprovalRequest.Priority.values)
    approvals_needed = serializers.IntegerField()
    approvals_given = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    sla_due_at = serializers.DateTimeField()
    sla_state = serializers.ChoiceField(choices=["ok", "at_risk", "breached"])
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()
    used_at = serializers.DateTimeField(allow_null=True)
    decisions = serializers.ListField(child=serializers.DictField())
    review = serializers.DictField(allow_null=True)


class ApprovalListOutSerializer(serializers.Serializer):
    results = ApprovalOutSerializer(many=True)


# --- views -----------------------------------------------------------------------------
class ApprovalsView(APIView):
    permission = "read"

    @extend_schema(
        operation_id="approvals_list",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                description="pending (default), approved, "
                "rejected, expired, cancelled, resolved or all",
            ),
            OpenApiParameter("agent", OpenApiTypes.UUID),
            OpenApiParameter("priority", str, enum=list(ApprovalRequest.Priority.values)),
            OpenApiParameter("tier", int, enum=[1, 2, 3, 4]),
            OpenApiParameter("sla", str, enum=["ok", "at_risk", "breached"]),
            OpenApiParameter("kind", str, enum=list(ApprovalRequest.Kind.values)),
            OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT} (default 100)"),
        ],
        responses={200: ApprovalListOutSerializer, **ERRORS},
        summary="Approval requests (the queue by default)",
    )
    def get(self, request):
        params = request.query_params
        status = params.get("status") or Status.PENDING
        filters, errors = selectors.parse_filters(params)
        if status not in [*Status.values, "all"]:
            errors["status"] = [f"One of {', '.join([*Status.values, 'all'])}."]
        limit = 100
        if params.get("limit"):
            try:
                limit = int(params["limit"])
            except ValueError:
                limit = 0
            if not 1 <= limit <= MAX_LIMIT:
                errors["limit"] = [f"An integer from 1 to {MAX_LIMIT}."]
        if errors:
            raise Invalid("The filters are not valid.", fields=errors)
        rows = selectors.search(status=status, filters=filters, limit=limit)
        return Response({"results": [approval_document(row) for row in rows]})


class DecideView(APIView):
    permission = "decide"

    @extend_schema(
        request=DecideSerializer,
        responses={
            200: ApprovalOutSerializer,
            **ERRORS,
            403: OpenApiResponse(
                description="The caller's role does not allow this, or the caller owns the "
                "agent (`separation_of_duties`)"
            ),
            409: OpenApiResponse(
                description="Already decided (`already_decided`), already approved by you "
                "(`already_voted`), expired or cancelled"
            ),
        },
        summary="Decide one request (first decision wins)",
    )
    def post(self, request, approval_id):
        approval = selectors.get(approval_id)
        if approval is None:
            raise NotFound("No such approval request.", code="approval_not_found")
        serializer = DecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if approval.is_review:
            services.resolve_review(
                approval, by=request.user, outcome=data["decision"], comment=data["comment"]
            )
        else:
            services.decide(
                approval, by=request.user, decision=data["decision"], comment=data["comment"]
            )
        return Response(approval_document(selectors.get(approval.id)))


class ApprovalStatusView(AgentEndpoint, APIView):
    """One request as its agent sees it; the long-poll is ``approvals.longpoll``."""

    @extend_schema(
        operation_id="approvals_status",
        parameters=[
            OpenApiParameter(
                "wait",
                int,
                description="Seconds (0-60) to hold the answer while the request is pending; "
                "it returns as soon as the request is decided, expires or is cancelled.",
            )
        ],
        responses={200: ApprovalStatusOutSerializer, **ERRORS},
        summary="An approval request's state, long-polled (agent key)",
    )
    def get(self, request, approval_id):
        parse_wait(request.query_params.get("wait"))
        approval = selectors.get(approval_id)
        if approval is None or approval.kind != ApprovalRequest.Kind.ACTION:
            raise NotFound("No such approval request.", code="approval_not_found")
        if approval.agent_id != request.user.agent.id:
            record_agent_denied(
                request,
                "approval request belongs to another agent",
                approval_id=str(approval_id),
            )
            raise NotFound("No such approval request.", code="approval_not_found")
        return Response(status_document(approval))
