"""The agent registry: agents, their API keys and sessions, and operator API tokens.

Writes go through ``console.services``; reads shared by views live in
``console.selectors``. Risk and trust numbers are cached on ``Agent`` for fast reads;
their owners are the ``assessments`` and ``trust`` apps (SPEC §2, §5).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

# SPEC §9: every budget key, null = unlimited.
BUDGET_KEYS = (
    "max_actions_per_session",
    "max_spend_per_session",
    "max_spend_per_day",
    "max_session_seconds",
    "max_depth",
)
# SPEC §9: scope lists. None = no restriction, except excluded_actions (None = nothing).
SCOPE_KEYS = (
    "allowed_actions",
    "excluded_actions",
    "allowed_targets",
    "read_only_actions",
    "sensitive_actions",
)
APPROVAL_TTL_MIN = 60
APPROVAL_TTL_MAX = 7 * 24 * 3600
APPROVAL_TTL_DEFAULT = 30 * 60


def default_budgets() -> dict:
    return dict.fromkeys(BUDGET_KEYS)


def default_scope() -> dict:
    return {key: ([] if key == "excluded_actions" else None) for key in SCOPE_KEYS}


class Agent(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        REVOKED = "revoked", "Revoked"

    class FailMode(models.TextChoices):
        CLOSED = "closed", "Fail closed"
        OPEN = "open", "Fail open"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="agents"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    scope = models.JSONField(default=default_scope)

    # Settings (SPEC §9 "settings")
    fail_mode = models.CharField(max_length=8, choices=FailMode.choices, default=FailMode.CLOSED)
    # None = automatic: on when the effective tier is 4 (SPEC §1).
    pause_on_halt = models.BooleanField(null=True, blank=True, default=None)
    approval_ttl_seconds = models.PositiveIntegerField(default=APPROVAL_TTL_DEFAULT)
    budgets = models.JSONField(default=default_budgets)

    # Current risk profile (SPEC §2), cached from the latest assessment.
    risk_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    risk_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    risk_profile_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    # Trust (SPEC §5), maintained by the trust app.
    behavioral = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("100"))
    alignment = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("100"))
    trust_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    trust_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    effective_tier = models.PositiveSmallIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "paused", "revoked"]),
                name="console_agent_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(fail_mode__in=["closed", "open"]), name="console_agent_fail_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(approval_ttl_seconds__gte=APPROVAL_TTL_MIN)
                & Q(approval_ttl_seconds__lte=APPROVAL_TTL_MAX),
                name="console_agent_approval_ttl_range",
            ),
            models.CheckConstraint(
                condition=Q(risk_tier__isnull=True) | Q(risk_tier__gte=1, risk_tier__lte=4),
                name="console_agent_risk_tier_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_assessed(self) -> bool:
        return self.risk_tier is not None

    @property
    def pause_on_halt_effective(self) -> bool:
        if self.pause_on_halt is None:
            return self.effective_tier == 4
        return self.pause_on_halt

    @property
    def actor(self) -> str:
        return f"agent:{self.id}"

    def settings_document(self) -> dict:
        return {
            "fail_mode": self.fail_mode,
            "pause_on_halt": self.pause_on_halt,
            "approval_ttl_seconds": self.approval_ttl_seconds,
            "budgets": {key: self.budgets.get(key) for key in BUDGET_KEYS},
        }


class ApiKey(models.Model):
    """An agent credential ``wdn_live_<prefix>_<secret>``; only a keyed hash is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="keys")
    prefix = models.CharField(max_length=8, unique=True)
    key_hash = models.CharField(max_length=64)
    label = models.CharField(max_length=100, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"wdn_live_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AgentSession(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ENDED = "ended", "Ended"
        HALTED = "halted", "Halted"
        REVOKED = "revoked", "Revoked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="sessions")
    run_id = models.UUIDField(default=uuid.uuid4, editable=False)
    workflow_id = models.CharField(max_length=200, null=True, blank=True)
    goal = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True, default="")
    # Running totals for budgets (SPEC §3.2 step 2), updated under the session row lock.
    action_count = models.PositiveIntegerField(default=0)
    spend_total = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "ended", "halted", "revoked"]),
                name="console_session_status_valid",
            ),
        ]
        indexes = [
            # "open sessions of this agent" (revoke closes them; dashboards count them)
            models.Index(fields=["agent", "status"], name="console_session_agent_status"),
        ]

    def __str__(self) -> str:
        return f"session {self.id}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class OperatorToken(models.Model):
    """An operator API token ``wdn_op_<prefix>_<secret>``; only a keyed hash is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    prefix = models.CharField(max_length=8, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"wdn_op_{self.prefix}_…"


# The authorization pipeline's models live beside it (console/authorize/models.py).
from .authorize.models import (  # noqa: E402, F401
    Action,
    Guardrail,
    IdempotencyRecord,
    Policy,
    Rule,
)
