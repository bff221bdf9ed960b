"""Writes of the assessment app: one function, ``assess_agent`` (SPEC §2).

It creates the agent's next assessment version, caches the new risk profile and the trust
numbers it implies on the agent (SPEC §5.1, §5.4), and records ``assessment.completed``, all
in one transaction; the websocket hint and the trust recompute (``trust.hooks``) go out after
commit.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from audit.services import record
from console import hints
from console.errors import Conflict, Invalid
from console.models import Agent
from console.validation import require_reason
from trust import hooks as trust_hooks
from trust import scoring as trust_scoring

from . import scoring
from .models import RiskAssessment

INITIAL_REASON = "initial assessment"


def _user_actor(user) -> str:
    return f"user:{user.get_username()}"


def validated_answers(answers: Any) -> dict[str, str]:
    """The answers, or ``Invalid`` naming every bad one as ``answers.<parameter>``."""
    errors = scoring.answer_errors(answers)
    if errors:
        raise Invalid(
            "The answers are not valid.",
            fields={
                f"answers.{key}" if key else "answers": reasons for key, reasons in errors.items()
            },
        )
    return scoring.validate_answers(answers)


def assess_agent(
    agent: Agent,
    *,
    answers: Any,
    by,
    reason: str = "",
    expected_version: int | None = None,
) -> RiskAssessment:
    """Record version N+1 of ``agent``'s risk profile and make it the current one.

    ``reason`` is required from version 2 on. ``expected_version`` (optional) is the latest
    version the caller based this on (0 = none): if someone saved another version
    meanwhile the call is refused (409 ``assessment_outdated``) rather than silently
    diffing against a version the user never saw.
    """
    clean = validated_answers(answers)
    profile = scoring.score(clean)
    try:
        with transaction.atomic():
            current = Agent.objects.select_for_update().get(pk=agent.pk)
            if current.status == Agent.Status.REVOKED:
                raise Conflict("A revoked agent cannot be assessed.", code="agent_revoked")
            previous = RiskAssessment.objects.filter(agent=current).order_by("-version").first()
            latest = previous.version if previous else 0
            if expected_version is not None and expected_version != latest:
                raise Conflict(
                    f"Version {latest} was saved since you started; review it and try again.",
                    code="assessment_outdated",
                )
            # SPEC §2: a reason is required from version 2 on; version 1 gets a default.
            if previous is None and not (isinstance(reason, str) and reason.strip()):
                reason = INITIAL_REASON
            reason = require_reason(reason)

            trust = trust_scoring.trust_score(
                profile.risk_profile_score, current.behavioral, current.alignment
            )
            # A worse trust tier applies at once, a better one only after 7 days (SPEC §5.4,
            # maintained by the trust app from here on).
            trust_tier = trust_scoring.applied_trust_tier(current.trust_tier, trust)
            effective = trust_scoring.effective_tier(profile.risk_tier, trust_tier)
            payload: dict[str, Any] = {
                "version": latest + 1,
                "answers": clean,
                "base_security": profile.base_security,
                "ai_specific": profile.ai_specific,
                "impact": profile.impact,
                "risk_percent": profile.risk_percent,
                "risk_tier": profile.risk_tier,
                "risk_profile_score": profile.risk_profile_score,
                "trust_score": trust,
                "trust_tier": trust_tier,
                "effective_tier": effective,
            }
            if previous is not None:
                payload["previous"] = {
                    "version": previous.version,
                    "answers": previous.answers,
                    "risk_percent": previous.risk_percent,
                    "risk_tier": previous.risk_tier,
                }
            event = record(
                "assessment.completed",
                actor=_user_actor(by),
                agent_id=current.id,
                reason=reason,
                payload=payload,
            )
            assessment = RiskAssessment.objects.create(
                agent=current,
                version=latest + 1,
                previous=previous,
                answers=clean,
                base_security=profile.base_security,
                ai_specific=profile.ai_specific,
                impact=profile.impact,
                risk_percent=profile.risk_percent,
                risk_tier=profile.risk_tier,
                risk_profile_score=profile.risk_profile_score,
                behavioral=current.behavioral,
                alignment=current.alignment,
                trust_score=trust,
                trust_tier=trust_tier,
                effective_tier=effective,
                reason=reason,
                assessed_by=by,
                event_id=event.id,
            )
            trust_hooks.event_recorded(event)
            current.risk_percent = profile.risk_percent
            current.risk_tier = profile.risk_tier
            current.risk_profile_score = profile.risk_profile_score
            current.trust_score = trust
            current.trust_tier = trust_tier
            current.effective_tier = effective
            current.save(
                update_fields=[
                    "risk_percent",
                    "risk_tier",
                    "risk_profile_score",
                    "trust_score",
                    "trust_tier",
                    "effective_tier",
                    "updated_at",
                ]
            )
    except IntegrityError as exc:
        # The agent row lock serialises versions; this is the database's backstop.
        raise Conflict(
            "Another assessment of this agent was saved at the same time; try again.",
            code="assessment_outdated",
        ) from exc
    hints.agent_changed_on_commit(current.id)
    return assessment
