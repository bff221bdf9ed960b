"""Approval requests and the reviewers' votes on them (SPEC §4).

``ApprovalRequest`` is bound to the exact action that needs a human: the agent, the session
that asked, the action id, name, target, the SHA-256 of the canonical arguments, amount,
the verdict's reason and source, the agent's effective tier at that time, and its priority
(``approvals.rules``). Re-authorization reviews (kind ``reauthorization``, SPEC §4, §5.4)
live in the same table and the same queue; they have no session and no action, and no
expiry (a person must choose Keep, Pause or Revoke).

``ApprovalDecision`` holds one row per reviewer's vote (four-eyes needs two distinct
approvers); it is append-only, protected by database triggers (``approvals/triggers.py``).

Writes go through ``approvals.services``; reads shared by pages and the API live in
``approvals.selectors``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from console.models import Agent, AgentSession


class ApprovalRequest(models.Model):
    class Kind(models.TextChoices):
        ACTION = "action", "Action"
        REAUTHORIZATION = "reauthorization", "Re-authorization review"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"
        # A re-authorization review once a reviewer chose Keep, Pause or Revoke.
        RESOLVED = "resolved", "Resolved"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Outcome(models.TextChoices):
        KEEP = "keep", "Keep (under the stricter tier)"
        PAUSE = "pause", "Pause"
        REVOKE = "revoke", "Revoke"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ACTION)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="approval_requests")
    session = models.ForeignKey(
        AgentSession,
        on_delete=models.PROTECT,
        related_name="approval_requests",
        null=True,
        blank=True,
    )
    # The proposed action; a plain UUID until the action model is linked (SPEC §4).
    action_id = models.UUIDField(null=True, blank=True)
    action_name = models.CharField(max_length=200, blank=True, default="")
    target = models.CharField(max_length=500, blank=True, default="")
    args_sha256 = models.CharField(max_length=64, blank=True, default="")
    # The arguments as redacted by the guardrails, for the reviewer's card only.
    args = models.JSONField(default=dict, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    source = models.CharField(max_length=200, blank=True, default="")
    severity = models.CharField(max_length=8, null=True, blank=True)
    effective_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices)
    approvals_needed = models.PositiveSmallIntegerField(default=1)

    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    sla_at_risk_at = models.DateTimeField()
    sla_due_at = models.DateTimeField()

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    # Single use (SPEC §4): set when the approved action's result is reported.
    used_at = models.DateTimeField(null=True, blank=True)

    # Re-authorization reviews (SPEC §5.4): why, and what the reviewer chose.
    review_kind = models.CharField(max_length=32, blank=True, default="")
    cause_event_id = models.UUIDField(null=True, blank=True)
    previous_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    new_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True, default="")

    # The approval.requested event.
    event_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["action", "reauthorization"]),
                name="approvals_request_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "approved",
                        "rejected",
                        "expired",
                        "cancelled",
                        "resolved",
                    ]
                ),
                name="approvals_request_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(priority__in=["low", "medium", "high", "critical"]),
                name="approvals_request_priority_valid",
            ),
            models.CheckConstraint(
                condition=Q(approvals_needed__gte=1, approvals_needed__lte=2),
                name="approvals_request_approvals_needed_range",
            ),
            # An action request is bound to its session, action and argument hash, and expires.
            models.CheckConstraint(
                condition=Q(kind="reauthorization")
                | (
                    Q(session__isnull=False)
                    & Q(action_id__isnull=False)
                    & Q(expires_at__isnull=False)
                ),
                name="approvals_request_action_bound",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", decided_at__isnull=True) | ~Q(status="pending"),
                name="approvals_request_pending_undecided",
            ),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | Q(status="approved"),
                name="approvals_request_used_only_if_approved",
            ),
            # One request per proposed action.
            models.UniqueConstraint(
                fields=["action_id"],
                condition=Q(action_id__isnull=False),
                name="approvals_request_one_per_action",
            ),
            # One open re-authorization review per agent: a later worsening joins it.
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(kind="reauthorization", status="pending"),
                name="approvals_request_one_open_review",
            ),
        ]
        indexes = [
            # pending_count(), the queue and expire_due_requests(): "pending, by expiry".
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending"),
                name="approvals_request_pending",
            ),
            # cancel_open_requests_for_agent() and the queue's agent filter.
            models.Index(fields=["agent", "status"], name="approvals_request_agent"),
            # The dashboard's queue-load chart: requests opened per hour.
            models.Index(fields=["created_at"], name="approvals_request_created"),
        ]

    def __str__(self) -> str:
        what = self.action_name if self.kind == self.Kind.ACTION else "re-authorization"
        return f"{what} ({self.status})"

    @property
    def is_review(self) -> bool:
        return self.kind == self.Kind.REAUTHORIZATION


class ApprovalDecision(models.Model):
    """One reviewer's vote on one request (append-only)."""

    class Choice(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"
        KEEP = "keep", "Keep"
        PAUSE = "pause", "Pause"
        REVOKE = "revoke", "Revoke"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=8, choices=Choice.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    event_id = models.UUIDField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Four-eyes means two *distinct* people (SPEC §4).
            models.UniqueConstraint(
                fields=["request", "reviewer"], name="approvals_decision_one_per_reviewer"
            ),
            models.CheckConstraint(
                condition=Q(decision__in=["approve", "reject", "keep", "pause", "revoke"]),
                name="approvals_decision_choice_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.reviewer_id}"
