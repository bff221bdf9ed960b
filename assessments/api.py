"""The assessment API (SPEC §9).

* ``POST /api/v1/assessments/preview`` ``{answers}`` → the SPEC §2 numbers, nothing saved;
* ``POST /api/v1/agents/{id}/assessments`` ``{answers, reason?, expected_version?}`` → the
  new version with its trust numbers;
* ``GET /api/v1/agents/{id}/assessments`` → every version, newest first.

Bad input is a 400 naming every bad field at once, answers as ``answers.<parameter>`` with
the allowed options in the reason.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.views import ERRORS, get_agent
from trust import scoring as trust_scoring

from . import scoring, selectors, services
from .models import RiskAssessment

ANSWERS_SCHEMA = {
    "type": "object",
    "description": "One option for each of the 14 parameters (SPEC §2.1).",
    "properties": {
        key: {"type": "string", "enum": list(parameter.option_keys), "title": parameter.title}
        for key, parameter in scoring.PARAMETERS.items()
    },
    "required": list(scoring.PARAMETER_KEYS),
    "additionalProperties": False,
}


def _number(value):
    return float(value) if value is not None else None


def profile_document(profile: scoring.RiskProfile) -> dict:
    initial = profile.initial_trust_score()
    return {
        "base_security": _number(profile.base_security),
        "ai_specific": _number(profile.ai_specific),
        "impact": _number(profile.impact),
        "risk_percent": _number(profile.risk_percent),
        "risk_tier": profile.risk_tier,
        "risk_tier_label": profile.tier_label,
        "risk_profile_score": _number(profile.risk_profile_score),
        "initial_trust_score": _number(initial),
        "initial_trust_tier": trust_scoring.trust_tier(initial),
    }


def assessment_document(assessment: RiskAssessment) -> dict:
    return {
        "agent_id": str(assessment.agent_id),
        "version": assessment.version,
        "answers": assessment.answers,
        "base_security": _number(assessment.base_security),
        "ai_specific": _number(assessment.ai_specific),
        "impact": _number(assessment.impact),
        "risk_percent": _number(assessment.risk_percent),
        "risk_tier": assessment.risk_tier,
        "risk_tier_label": assessment.tier_label,
        "risk_profile_score": _number(assessment.risk_profile_score),
        "behavioral": _number(assessment.behavioral),
        "alignment": _number(assessment.alignment),
        "trust_score": _number(assessment.trust_score),
        "trust_tier": assessment.trust_tier,
        "effective_tier": assessment.effective_tier,
        "reason": assessment.reason,
        "assessed_by": assessment.assessed_by.get_username(),
        "created_at": assessment.created_at.isoformat().replace("+00:00", "Z"),
        "previous_version": assessment.version - 1 if assessment.previous_id else None,
        "changes": [
            {"parameter": change["key"], "from": change["from"], "to": change["to"]}
            for change in assessment.changes()
        ],
        "event_id": str(assessment.event_id),
    }


@extend_schema_field(ANSWERS_SCHEMA)
class AnswersField(serializers.JSONField):
    """The 14 answers; every unknown, missing or invalid one is reported (SPEC §2.2)."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        errors = scoring.answer_errors(data)
        if "" in errors:
            raise ValidationError(errors[""])
        if errors:
            raise ValidationError(errors)
        return scoring.validate_answers(data)


class AllErrorsSerializer(serializers.Serializer):
    """Reports unknown fields *and* invalid known fields together, not one after the other."""

    def to_internal_value(self, data):
        errors: dict = {}
        if isinstance(data, dict):
            for key in sorted(set(data) - set(self.fields)):
                errors[key] = ["Unknown field."]
        try:
            value = super().to_internal_value(data)
        except ValidationError as exc:
            detail = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            errors.update(detail)
            value = None
        if errors:
            raise ValidationError(errors)
        return value


class PreviewSerializer(AllErrorsSerializer):
    """The 14 answers to score; nothing is saved."""

    answers = AnswersField()


class AssessSerializer(AllErrorsSerializer):
    """A new assessment version: the 14 answers and, from version 2 on, a reason."""

    answers = AnswersField()
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why; required from version 2 on (re-assessment).",
    )
    expected_version = serializers.IntegerField(
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        help_text="The latest version you based this on (0 = none); 409 if another was saved.",
    )


class ProfileOutSerializer(serializers.Serializer):
    base_security = serializers.FloatField()
    ai_specific = serializers.FloatField()
    impact = serializers.FloatField()
    risk_percent = serializers.FloatField()
    risk_tier = serializers.IntegerField()
    risk_tier_label = serializers.CharField()
    risk_profile_score = serializers.FloatField()
    initial_trust_score = serializers.FloatField(help_text="SPEC §5.1 for a new agent")
    initial_trust_tier = serializers.IntegerField()


class ChangeOutSerializer(serializers.Serializer):
    parameter = serializers.CharField()
    to = serializers.CharField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField()
        return fields


class AssessmentOutSerializer(serializers.Serializer):
    agent_id = serializers.UUIDField()
    version = serializers.IntegerField()
    answers = AnswersField()
    base_security = serializers.FloatField()
    ai_specific = serializers.FloatField()
    impact = serializers.FloatField()
    risk_percent = serializers.FloatField()
    risk_tier = serializers.IntegerField()
    risk_tier_label = serializers.CharField()
    risk_profile_score = serializers.FloatField()
    behavioral = serializers.FloatField()
    alignment = serializers.FloatField()
    trust_score = serializers.FloatField()
    trust_tier = serializers.IntegerField()
    effective_tier = serializers.IntegerField()
    reason = serializers.CharField()
    assessed_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    previous_version = serializers.IntegerField(allow_null=True)
    changes = ChangeOutSerializer(many=True)
    event_id = serializers.UUIDField()


class AssessmentListOutSerializer(serializers.Serializer):
    results = AssessmentOutSerializer(many=True)


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PreviewView(APIView):
    permission = "read"

    @extend_schema(
        request=PreviewSerializer,
        responses={200: ProfileOutSerializer, **ERRORS},
        summary="Score 14 answers without saving (SPEC §2.2)",
    )
    def post(self, request):
        data = _validated(PreviewSerializer, request)
        return Response(profile_document(scoring.score(data["answers"])))


class AgentAssessmentsView(APIView):
    permissions = {"GET": "read", "POST": "assess"}

    @extend_schema(
        responses={200: AssessmentListOutSerializer, **ERRORS},
        summary="Every assessment version of an agent, newest first",
    )
    def get(self, request, agent_id):
        agent = get_agent(agent_id)
        return Response({"results": [assessment_document(a) for a in selectors.versions(agent)]})

    @extend_schema(
        request=AssessSerializer,
        responses={201: AssessmentOutSerializer, **ERRORS},
        summary="Assess (or re-assess, reason required) an agent",
    )
    def post(self, request, agent_id):
        agent = get_agent(agent_id)
        data = _validated(AssessSerializer, request)
        assessment = services.assess_agent(
            agent,
            answers=data["answers"],
            by=request.user,
            reason=data["reason"],
            expected_version=data["expected_version"],
        )
        return Response(assessment_document(assessment), status=status.HTTP_201_CREATED)
