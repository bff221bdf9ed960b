"""Models of the authorization pipeline (SPEC §3), part of the ``console`` app.

* :class:`Policy` — a Rego module (SPEC §3.2 step 5) for one agent or all (``agent`` null).
* :class:`Rule` — a behavioural rule (``rate``, ``cumulative``, ``sequence``,
  ``first_seen``; SPEC §3.2 step 6).
* :class:`Guardrail` — PII, banned words, payload size or canary tokens (step 3).
* :class:`Action` — one row per proposed action: what was asked, the verdict, and the
  result the agent reported.
* :class:`ActionRollup` — actions counted per name and second / minute / hour / day, kept
  by a trigger: behavioural rules, budgets and the policy input read windows of history
  through it, all of one proposal's reads in one statement (``history``).
* :class:`IdempotencyRecord` — the first answer to a proposal, by agent and
  ``Idempotency-Key`` (SPEC §9).

Policies, rules and guardrails carry a ``mode`` (guardrails: ``enforcement``) of
``enforce`` | ``shadow`` | ``disabled`` and a ``version`` that grows with every change
(compiled Rego is cached per version). They are never deleted: ``DELETE`` in the API sets
``deleted_at`` and disables them, so past events and backtests keep their referent. Writes
go through ``console.authorize.services``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Mode(models.TextChoices):
    ENFORCE = "enforce", "Enforce"
    SHADOW = "shadow", "Shadow"
    DISABLED = "disabled", "Disabled"


class Severity(models.TextChoices):
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


MODES = [m.value for m in Mode]
SEVERITIES = [s.value for s in Severity]


class _Configurable(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    # None: applies to every agent.
    agent = models.ForeignKey(
        "console.Agent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Policy(_Configurable):
    module = models.TextField()
    package = models.CharField(max_length=200)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ENFORCE)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(deleted_at__isnull=True),
                name="console_policy_name_live",
            ),
            models.CheckConstraint(condition=Q(mode__in=MODES), name="console_policy_mode_valid"),
        ]

    @property
    def source(self) -> str:
        return f"policy:{self.name}"


class Rule(_Configurable):
    class Kind(models.TextChoices):
        RATE = "rate", "Rate"
        CUMULATIVE = "cumulative", "Cumulative amount"
        SEQUENCE = "sequence", "Sequence"
        FIRST_SEEN = "first_seen", "First seen target"

    class RuleVerdict(models.TextChoices):
        BLOCK = "block", "Block"
        HALT = "halt", "Halt"
        REQUIRE_APPROVAL = "require_approval", "Require approval"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    pattern = models.CharField(max_length=200)
    then_pattern = models.CharField(max_length=200, blank=True, default="")
    # None: the whole history (first_seen only).
    window_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Count for rate, amount for cumulative; unused by sequence and first_seen.
    threshold = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    verdict = models.CharField(max_length=20, choices=RuleVerdict.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)
    priority = models.PositiveSmallIntegerField(default=50)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ENFORCE)

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(deleted_at__isnull=True), name="console_rule_name_live"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["rate", "cumulative", "sequence", "first_seen"]),
                name="console_rule_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=["block", "halt", "require_approval"]),
                name="console_rule_verdict_valid",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=SEVERITIES), name="console_rule_severity_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=1, priority__lte=100), name="console_rule_priority_range"
            ),
            models.CheckConstraint(condition=Q(mode__in=MODES), name="console_rule_mode_valid"),
        ]

    @property
    def source(self) -> str:
        return f"rule:{self.name}"


class Guardrail(_Configurable):
    class Kind(models.TextChoices):
        PII = "pii", "PII"
        BANNED_WORDS = "banned_words", "Banned words"
        PAYLOAD_SIZE = "payload_size", "Payload size"
        CANARY = "canary", "Canary tokens"

    class Effect(models.TextChoices):
        REDACT = "redact", "Redact"
        BLOCK = "block", "Block"
        LOG = "log", "Log"

    class Stage(models.TextChoices):
        INPUT = "input", "Input (proposed arguments)"
        OUTPUT = "output", "Output (reported results)"
        BOTH = "both", "Both"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What a finding does (SPEC §9 guardrail ``mode``).
    mode = models.CharField(max_length=8, choices=Effect.choices, default=Effect.REDACT)
    # Whether the guardrail decides, only reports what it would do, or is off.
    enforcement = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ENFORCE)
    stage = models.CharField(max_length=8, choices=Stage.choices, default=Stage.INPUT)
    config = models.JSONField(default=dict)
    # Canary tokens, encrypted (console.authorize.canary); write-only: never serialised.
    secret = models.TextField(blank=True, default="")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(deleted_at__isnull=True),
                name="console_guardrail_name_live",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["pii", "banned_words", "payload_size", "canary"]),
                name="console_guardrail_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(mode__in=["redact", "block", "log"]),
                name="console_guardrail_mode_valid",
            ),
            models.CheckConstraint(
                condition=Q(enforcement__in=MODES), name="console_guardrail_enforcement_valid"
            ),
            models.CheckConstraint(
                condition=Q(stage__in=["input", "output", "both"]),
                name="console_guardrail_stage_valid",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=SEVERITIES), name="console_guardrail_severity_valid"
            ),
        ]

    @property
    def source(self) -> str:
        return f"guardrail:{self.name}"

    def applies_to(self, stage: str) -> bool:
        return self.stage == stage or self.stage == self.Stage.BOTH


class ActionVerdict(models.TextChoices):
    ALLOW = "ALLOW", "Allow"
    BLOCK = "BLOCK", "Block"
    HALT = "HALT", "Halt"
    REQUIRE_APPROVAL = "REQUIRE_APPROVAL", "Require approval"


VERDICTS = ActionVerdict.values


class Action(models.Model):
    """One proposed action and its verdict (SPEC §3, §9)."""

    class ResultStatus(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column index: the composite indexes below all start with the agent.
    agent = models.ForeignKey(
        "console.Agent", on_delete=models.PROTECT, related_name="actions", db_index=False
    )
    session = models.ForeignKey(
        "console.AgentSession", on_delete=models.PROTECT, related_name="actions"
    )
    name = models.CharField(max_length=200)
    target = models.CharField(max_length=500, blank=True, default="")
    # The arguments as redacted by the guardrails (what the agent was told to use).
    args = models.JSONField(null=True, blank=True)
    # SHA-256 of the RFC 8785 canonical form of the arguments the agent sent.
    args_sha256 = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True, default="")
    sensitive = models.BooleanField(default=False)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    depth = models.PositiveSmallIntegerField(default=1)

    verdict = models.CharField(max_length=20)
    source = models.CharField(max_length=200)
    reason = models.TextField(blank=True, default="")
    severity = models.CharField(max_length=10, null=True, blank=True)
    in_scope = models.BooleanField(default=True)
    approval_id = models.UUIDField(null=True, blank=True)
    event_id = models.UUIDField(null=True, blank=True)  # its action.evaluated event
    created_at = models.DateTimeField(default=timezone.now)

    result_status = models.CharField(
        max_length=8, choices=ResultStatus.choices, null=True, blank=True
    )
    result_at = models.DateTimeField(null=True, blank=True)
    result_event_id = models.UUIDField(null=True, blank=True)
    # The answer to the result report, replayed for a retry with the same Idempotency-Key.
    result_key = models.CharField(max_length=200, null=True, blank=True)
    result_response = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(verdict__in=VERDICTS), name="console_action_verdict_valid"
            ),
            models.CheckConstraint(
                condition=Q(result_status__isnull=True) | Q(result_status__in=["ok", "error"]),
                name="console_action_result_status_valid",
            ),
        ]
        indexes = [
            # rate / cumulative / sequence rules with a literal pattern: this agent's actions
            # named N since T (one range scan).
            models.Index(fields=["agent", "name", "created_at"], name="console_action_agent_name"),
            # rules with a glob pattern, per-day spend budget, the policy input's history,
            # backtests: this agent's actions since T.
            models.Index(fields=["agent", "created_at"], name="console_action_agent_time"),
            # first_seen rules: has this agent already acted on this target?
            models.Index(fields=["agent", "target"], name="console_action_agent_target"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.verdict}"


class ActionRollup(models.Model):
    """An agent's actions of one name counted per time bucket (second, minute, hour, day).

    Derived data, kept by a database trigger on ``console_action`` (``rollups``) in the
    inserting transaction, so the rules, budgets and the policy input read a window of
    any length in a bounded number of rows (``buckets``) instead of scanning it.
    """

    pk = models.CompositePrimaryKey("agent_id", "resolution", "start", "name")
    agent_id = models.UUIDField()
    resolution = models.IntegerField()  # seconds: 1, 60, 3600 or 86400
    start = models.BigIntegerField()  # the bucket's first second since the epoch (UTC)
    name = models.CharField(max_length=200)
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=24, decimal_places=2, default=0)
    # The amounts of ALLOWed and REQUIRE_APPROVAL actions only (the spend budget's).
    committed_amount = models.DecimalField(max_digits=24, decimal_places=2, default=0)

    def __str__(self) -> str:
        return f"{self.name} ×{self.count} @{self.start}/{self.resolution}s"


class IdempotencyRecord(models.Model):
    """The stored first answer to ``POST …/actions`` per (agent, Idempotency-Key)."""

    # Looked up by (agent, key): the unique constraint's index serves it.
    agent = models.ForeignKey(
        "console.Agent", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    key = models.CharField(max_length=200)
    # SHA-256 of the session id and the canonical body: same key + other body → 422.
    request_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(default=200)
    response = models.JSONField()
    action = models.ForeignKey(
        Action, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "key"], name="console_idempotency_agent_key"),
        ]
        indexes = [
            # purge_idempotency_records: records older than the retention window.
            models.Index(fields=["created_at"], name="console_idempotency_created"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.key}"


class ConfigVersion(models.Model):
    """One row whose ``token`` changes with every write of a policy, rule or guardrail.

    Each process caches the live configuration under the token it read
    (``console.authorize.runtime.load_config``): a proposal reads one small row instead of
    loading every policy, rule and guardrail. A random token, not a counter, so a cache
    can never mistake a restored or re-created database for the state it saw.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    token = models.UUIDField(default=uuid.uuid4)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.token)
