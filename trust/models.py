"""Trust records (SPEC §5.5).

* ``TrustHistory``: one row per change of an agent's trust (score, tier or a component),
  with the SPEC §5.5 fields. Append-only: written by ``trust.services`` only, never
  changed; database triggers (migration ``0002``) refuse UPDATE, DELETE and TRUNCATE.
  Unique constraints make a replayed task unable to write the same change twice.
* ``TrustState``: the reducer's memory for one agent (``trust.reducer.State`` as JSON),
  the watermark of the last applied event (log ``seq``) and its clock. The cached numbers
  the rest of Warden reads live on ``console.Agent``.
* ``Alert``: something a person should look at (a worse trust tier, a velocity decline);
  open until acknowledged.
* ``TrustCursor``: how far the periodic task has scanned the log for trust events whose
  task was lost (one row).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .reducer import State


class ImmutableRecord(Exception):
    """An attempt to change or delete a stored trust history row."""


class TrustHistoryQuerySet(models.QuerySet):
    def for_agent(self, agent) -> TrustHistoryQuerySet:
        return self.filter(agent=agent).order_by("-id")

    def update(self, **kwargs):  # type: ignore[override]
        raise ImmutableRecord("trust history is append-only")

    def delete(self):  # type: ignore[override]
        raise ImmutableRecord("trust history is append-only and kept for audit")


class TrustHistory(models.Model):
    class ChangeType(models.TextChoices):
        VIOLATION = "violation", "Violation"
        APPROVAL_OUTCOME = "approval_outcome", "Approval outcome"
        RECOVERY = "recovery", "Recovery"
        ALIGNMENT = "alignment", "Alignment"
        REASSESSMENT = "reassessment", "Re-assessment"
        MANUAL_RECALCULATION = "manual_recalculation", "Manual recalculation"

    id = models.BigAutoField(primary_key=True)
    agent = models.ForeignKey("console.Agent", on_delete=models.PROTECT, related_name="+")
    # Null before the agent's first assessment (no score yet).
    previous_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    new_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    previous_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    new_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    previous_effective_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    new_effective_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    # Component values after the change, and the deltas (SPEC §5.5 "component deltas").
    risk_profile_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    behavioral = models.DecimalField(max_digits=5, decimal_places=2)
    alignment = models.DecimalField(max_digits=5, decimal_places=2)
    risk_profile_delta = models.DecimalField(max_digits=6, decimal_places=2)
    behavioral_delta = models.DecimalField(max_digits=6, decimal_places=2)
    alignment_delta = models.DecimalField(max_digits=6, decimal_places=2)
    change_type = models.CharField(max_length=32, choices=ChangeType.choices)
    change_reason = models.TextField()
    evaluated_by = models.CharField(max_length=200)  # system:<task> | user:<name>
    # The event that caused the change (null for day-boundary changes: recovery, upgrade).
    cause_event_id = models.UUIDField(null=True, blank=True)
    # The event that records this change (trust.changed, or trust.recalculated).
    event_id = models.UUIDField(unique=True)
    # When the change took effect on the trust clock (the cause's time or the boundary);
    # created_at is when the row was written.
    effective_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TrustHistoryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A replayed task cannot apply the same cause twice.
            models.UniqueConstraint(
                fields=["agent", "cause_event_id", "change_type"],
                condition=Q(cause_event_id__isnull=False),
                name="trust_trusthistory_cause_once",
            ),
            # A day boundary changes an agent's trust at most once.
            models.UniqueConstraint(
                fields=["agent", "change_type", "effective_at"],
                condition=Q(cause_event_id__isnull=True),
                name="trust_trusthistory_boundary_once",
            ),
            models.CheckConstraint(
                condition=Q(
                    change_type__in=[
                        "violation",
                        "approval_outcome",
                        "recovery",
                        "alignment",
                        "reassessment",
                        "manual_recalculation",
                    ]
                ),
                name="trust_trusthistory_change_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(behavioral__gte=0, behavioral__lte=100)
                & Q(alignment__gte=0, alignment__lte=100)
                & (Q(new_score__isnull=True) | Q(new_score__gte=0, new_score__lte=100)),
                name="trust_trusthistory_range",
            ),
            models.CheckConstraint(
                condition=(Q(new_tier__isnull=True) | Q(new_tier__gte=1, new_tier__lte=4))
                & (Q(previous_tier__isnull=True) | Q(previous_tier__gte=1, previous_tier__lte=4)),
                name="trust_trusthistory_tier_range",
            ),
        ]
        indexes = [
            # The Monitor tab and the API: an agent's history newest first, and its chart
            # over a time range.
            models.Index(fields=["agent", "-id"], name="trust_history_agent"),
            models.Index(fields=["agent", "effective_at"], name="trust_history_agent_time"),
            # Dashboard "biggest movers of the week": every change since a date.
            models.Index(fields=["effective_at"], name="trust_history_time"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.change_type} {self.previous_score} → {self.new_score}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRecord("trust history is append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("trust history is append-only and kept for audit")

    @property
    def score_delta(self):
        if self.previous_score is None or self.new_score is None:
            return None
        return self.new_score - self.previous_score


class TrustState(models.Model):
    agent = models.OneToOneField(
        "console.Agent", on_delete=models.PROTECT, primary_key=True, related_name="trust_state"
    )
    # The log seq of the last event applied (events are applied in seq order).
    last_seq = models.BigIntegerField(default=0)
    # The reducer's clock (the latest event time or day boundary evaluated).
    clock = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # advance_trust_clock: "states whose clock is before the due day boundary".
            models.Index(fields=["clock"], name="trust_state_clock"),
        ]

    def __str__(self) -> str:
        return f"trust state of {self.agent_id} at seq {self.last_seq}"

    def load(self) -> State:
        return State.from_json(self.data)


class Alert(models.Model):
    class Kind(models.TextChoices):
        TIER_WORSENED = "tier_worsened", "Trust tier worsened"
        VELOCITY = "velocity", "Trust falling fast"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("console.Agent", on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    message = models.TextField()
    # What caused it: the event (tier worsened) or nothing for a day-boundary check.
    cause_event_id = models.UUIDField(null=True, blank=True)
    # The alert.raised event.
    event_id = models.UUIDField(unique=True)
    trust_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    previous_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    new_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    effective_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    acknowledge_note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "kind", "cause_event_id"],
                condition=Q(cause_event_id__isnull=False),
                name="trust_alert_cause_once",
            ),
            models.UniqueConstraint(
                fields=["agent", "kind", "effective_at"],
                condition=Q(cause_event_id__isnull=True),
                name="trust_alert_boundary_once",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["tier_worsened", "velocity"]),
                name="trust_alert_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True) | Q(acknowledged_by__isnull=False),
                name="trust_alert_acknowledged_by_someone",
            ),
        ]
        indexes = [
            # Dashboard and Monitor tab: "open alerts, newest first".
            models.Index(
                fields=["-created_at"],
                name="trust_alert_open",
                condition=Q(acknowledged_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} alert for {self.agent_id}"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None


class TrustCursor(models.Model):
    """One row: the highest log seq the periodic task has scanned for trust events."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="trust_cursor_single_row")]

    def __str__(self) -> str:
        return f"trust cursor at seq {self.last_seq}"
