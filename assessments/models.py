"""Versioned, immutable risk assessments (SPEC §2).

Each ``RiskAssessment`` is one version of an agent's risk profile: the 14 answers, the
numbers of SPEC §2.2, the trust numbers it produced, who made it, when and why. Versions are
numbered 1, 2, 3 … per agent; the latest is the agent's current profile (cached on
``console.Agent``). Rows are written only by ``assessments.services.assess_agent`` and never
change afterwards: ``save()`` refuses updates, ``delete()`` refuses, and database triggers
(migration ``0002``) refuse UPDATE / DELETE / TRUNCATE underneath the ORM.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from . import scoring


class ImmutableRecord(Exception):
    """An attempt to change or delete a stored assessment version."""


class RiskAssessmentQuerySet(models.QuerySet):
    def for_agent(self, agent) -> RiskAssessmentQuerySet:
        return self.filter(agent=agent).select_related("assessed_by").order_by("-version")

    def update(self, **kwargs):  # type: ignore[override]
        raise ImmutableRecord("risk assessments are immutable; assess again for a new version")

    def delete(self):  # type: ignore[override]
        raise ImmutableRecord("risk assessments are immutable and kept for audit")


class RiskAssessment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("console.Agent", on_delete=models.PROTECT, related_name="assessments")
    version = models.PositiveIntegerField()
    # The version this one replaces (None for version 1): the "previous values" of SPEC §2.
    previous = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="next_version"
    )
    answers = models.JSONField()

    base_security = models.DecimalField(max_digits=5, decimal_places=4)
    ai_specific = models.DecimalField(max_digits=5, decimal_places=4)
    impact = models.DecimalField(max_digits=5, decimal_places=4)
    risk_percent = models.DecimalField(max_digits=5, decimal_places=2)
    risk_tier = models.PositiveSmallIntegerField()
    risk_profile_score = models.DecimalField(max_digits=5, decimal_places=2)
    # Trust at the time of the assessment (SPEC §5.1 with the agent's components then).
    behavioral = models.DecimalField(max_digits=5, decimal_places=2)
    alignment = models.DecimalField(max_digits=5, decimal_places=2)
    trust_score = models.DecimalField(max_digits=5, decimal_places=2)
    trust_tier = models.PositiveSmallIntegerField()
    effective_tier = models.PositiveSmallIntegerField()

    reason = models.TextField(blank=True, default="")
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The ``assessment.completed`` GovernanceEvent recorded with this version.
    event_id = models.UUIDField(unique=True)

    objects = RiskAssessmentQuerySet.as_manager()

    class Meta:
        ordering = ["agent", "-version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "version"], name="assessments_riskassessment_agent_version"
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1), name="assessments_riskassessment_version_positive"
            ),
            # SPEC §2: re-assessment (version 2 on) needs a reason.
            models.CheckConstraint(
                condition=Q(version=1) | ~Q(reason=""),
                name="assessments_riskassessment_reason_after_v1",
            ),
            models.CheckConstraint(
                condition=Q(version=1, previous__isnull=True)
                | Q(version__gt=1, previous__isnull=False),
                name="assessments_riskassessment_previous_iff_not_v1",
            ),
            models.CheckConstraint(
                condition=Q(risk_tier__gte=1, risk_tier__lte=4)
                & Q(trust_tier__gte=1, trust_tier__lte=4)
                & Q(effective_tier__gte=1, effective_tier__lte=4),
                name="assessments_riskassessment_tiers_range",
            ),
            models.CheckConstraint(
                condition=Q(risk_percent__gte=0, risk_percent__lte=100)
                & Q(risk_profile_score__gte=0, risk_profile_score__lte=100)
                & Q(trust_score__gte=0, trust_score__lte=100),
                name="assessments_riskassessment_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} v{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRecord("risk assessments are immutable; assess again for a new version")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("risk assessments are immutable and kept for audit")

    @property
    def tier_label(self) -> str:
        return scoring.TIER_MEANINGS[self.risk_tier]["label"]

    def answer_rows(self) -> list[dict]:
        """The answers with parameter and option titles, in wizard order."""
        rows = []
        for category in scoring.CATEGORIES:
            for parameter in category.parameters:
                key = self.answers.get(parameter.key)
                rows.append(
                    {
                        "category": category.title,
                        "key": parameter.key,
                        "title": parameter.title,
                        "answer": key,
                        "label": scoring.option_label(parameter, key),
                    }
                )
        return rows

    def changes(self) -> list[dict[str, str]]:
        """What changed against the previous version (empty for version 1)."""
        previous = self.previous
        return scoring.changed_answers(previous.answers if previous else None, self.answers)
