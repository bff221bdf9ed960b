"""Input and output shapes of the authorization API (SPEC §9)."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.timefmt import format_timestamp
from console.api.base import StrictSerializer

from .models import Action, ActionVerdict, Guardrail, Mode, Policy, Rule, Severity

MAX_AMOUNT = Decimal("1e15")


class StrictCharField(serializers.CharField):
    """A JSON string, never a number or a boolean turned into one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class ObjectField(serializers.JSONField):
    """A JSON object (or null)."""

    def to_internal_value(self, data):
        if data is not None and not isinstance(data, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        return data


@extend_schema_field(OpenApiTypes.STR)
class AmountField(serializers.Field):
    """A non-negative amount as a decimal string (``"120000.00"``) or a JSON number."""

    default_error_messages = {
        "invalid": 'A non-negative decimal amount (a string such as "120000.00", or a number) is required.',
        "places": "At most 2 decimal places.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        try:
            amount = Decimal(repr(data) if isinstance(data, float) else str(data).strip())
        except InvalidOperation:
            self.fail("invalid")
        if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
            self.fail("invalid")
        if amount != amount.quantize(Decimal("0.01")):
            self.fail("places")
        return amount.quantize(Decimal("0.01"))

    def to_representation(self, value):
        return format(value, "f")


class ProposalSerializer(StrictSerializer):
    name = StrictCharField(max_length=200)
    target = StrictCharField(max_length=500, required=False, allow_null=True, allow_blank=True)
    args = ObjectField(required=False, allow_null=True)
    amount = AmountField(required=False, allow_null=True)
    currency = serializers.RegexField(
        r"^[A-Z]{3}$",
        required=False,
        allow_null=True,
        error_messages={"invalid": "A three-letter ISO 4217 code such as USD."},
    )
    sensitive = StrictBooleanField(required=False, default=False)
    parent_action_id = serializers.UUIDField(required=False, allow_null=True)

    def validate_name(self, value):
        if any(ord(c) < 32 for c in value) or value != value.strip():
            raise serializers.ValidationError("No control characters or surrounding spaces.")
        return value


class ResultSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=Action.ResultStatus.choices)
    output = serializers.JSONField(required=False, allow_null=True)


class ProposalAnswerSerializer(serializers.Serializer):
    action_id = serializers.UUIDField()
    verdict = serializers.ChoiceField(choices=ActionVerdict.choices)
    reason = serializers.CharField()
    source = serializers.CharField()
    constrained = serializers.BooleanField()
    args = serializers.JSONField(help_text="The arguments to use (redacted by guardrails).")
    approval_id = serializers.UUIDField(allow_null=True)
    approval_expires_at = serializers.DateTimeField(allow_null=True)
    event_id = serializers.UUIDField()


class ResultAnswerSerializer(serializers.Serializer):
    action_id = serializers.UUIDField()
    status = serializers.CharField(help_text='"recorded"')
    event_id = serializers.UUIDField()
    verdict = serializers.CharField(
        required=False, help_text="HALT or BLOCK when an output guardrail refused the output"
    )
    reason = serializers.CharField(required=False)
    source = serializers.CharField(required=False)


# --- operator bodies ----------------------------------------------------------------------
class PolicyCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    module = StrictCharField(max_length=64 * 1024, trim_whitespace=False)
    agent = serializers.UUIDField(required=False, allow_null=True, default=None)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False, default="enforce")
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")


class PolicyUpdateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100, required=False)
    module = StrictCharField(max_length=64 * 1024, trim_whitespace=False, required=False)
    agent = serializers.UUIDField(required=False, allow_null=True)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True)
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True)


class RuleCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    kind = serializers.ChoiceField(choices=Rule.Kind.choices)
    pattern = StrictCharField(max_length=200)
    then_pattern = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    window_seconds = serializers.IntegerField(required=False, allow_null=True, default=None)
    threshold = AmountField(required=False, allow_null=True, default=None)
    verdict = serializers.ChoiceField(choices=Rule.RuleVerdict.choices)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, default="major")
    priority = serializers.IntegerField(required=False, default=50)
    agent = serializers.UUIDField(required=False, allow_null=True, default=None)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False, default="enforce")
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")


class RuleUpdateSerializer(RuleCreateSerializer):
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True)

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
            field.default = serializers.empty
        return fields


class GuardrailCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    kind = serializers.ChoiceField(choices=Guardrail.Kind.choices)
    mode = serializers.ChoiceField(choices=Guardrail.Effect.choices, required=False)
    config = ObjectField(required=False, allow_null=True)
    agent = serializers.UUIDField(required=False, allow_null=True, default=None)
    stage = serializers.ChoiceField(
        choices=Guardrail.Stage.choices, required=False, default="input"
    )
    enforcement = serializers.ChoiceField(choices=Mode.choices, required=False, default="enforce")
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, default="major")
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")


class GuardrailUpdateSerializer(GuardrailCreateSerializer):
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True)

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
            field.default = serializers.empty
        return fields


class BacktestSerializer(StrictSerializer):
    agent = serializers.UUIDField()
    # "from" is a Python keyword: declared below.
    to = serializers.DateTimeField()
    module = StrictCharField(
        max_length=64 * 1024,
        trim_whitespace=False,
        required=False,
        help_text="Policies: backtest this draft source instead of the saved module.",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        return fields


class RuleBacktestSerializer(BacktestSerializer):
    draft = ObjectField(
        required=False, allow_null=True, help_text="Rule fields to try instead of the saved ones."
    )

    def get_fields(self):
        fields = super().get_fields()
        del fields["module"]
        return fields


class PolicyTestSerializer(StrictSerializer):
    module = StrictCharField(max_length=64 * 1024, trim_whitespace=False)
    input = ObjectField()


# --- documents -------------------------------------------------------------------------
def _time(value):
    return format_timestamp(value) if value else None


def _common(obj) -> dict:
    return {
        "id": str(obj.id),
        "name": obj.name,
        "description": obj.description,
        "agent": str(obj.agent_id) if obj.agent_id else None,
        "version": obj.version,
        "created_at": _time(obj.created_at),
        "updated_at": _time(obj.updated_at),
        "deleted_at": _time(obj.deleted_at),
    }


def policy_document(policy: Policy) -> dict:
    return {
        **_common(policy),
        "module": policy.module,
        "package": policy.package,
        "mode": policy.mode,
    }


def rule_document(rule: Rule) -> dict:
    return {
        **_common(rule),
        "kind": rule.kind,
        "pattern": rule.pattern,
        "then_pattern": rule.then_pattern or None,
        "window_seconds": rule.window_seconds,
        # A count for rate rules, an amount (decimal string) for cumulative ones.
        "threshold": None
        if rule.threshold is None
        else int(rule.threshold)
        if rule.kind == "rate"
        else format(rule.threshold.quantize(Decimal("0.01")), "f"),
        "verdict": rule.verdict,
        "severity": rule.severity,
        "priority": rule.priority,
        "mode": rule.mode,
    }


def guardrail_document(guardrail: Guardrail) -> dict:
    # ``config`` never holds canary tokens (they are in ``secret``, never serialised).
    return {
        **_common(guardrail),
        "kind": guardrail.kind,
        "mode": guardrail.mode,
        "enforcement": guardrail.enforcement,
        "stage": guardrail.stage,
        "severity": guardrail.severity,
        "config": guardrail.config,
    }
