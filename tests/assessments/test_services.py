"""``assess_agent``: versions, the agent's cached profile and trust, the event (SPEC §2, §5.1)."""

from decimal import Decimal
from unittest import mock

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from assessments.models import ImmutableRecord, RiskAssessment
from assessments.services import assess_agent
from console import services as console_services
from console.errors import Conflict, Invalid
from console.models import Agent
from tests.assessments.vectors import BY_NAME, PROCUREMENT
from tests.helpers import events_of, integrate

ANSWERS = PROCUREMENT["answers"]
PAYLOAD_KEYS = {
    "version",
    "answers",
    "base_security",
    "ai_specific",
    "impact",
    "risk_percent",
    "risk_tier",
    "risk_profile_score",
    "trust_score",
    "trust_tier",
    "effective_tier",
}


@pytest.fixture
def compliance(make_operator):
    return make_operator("compliance", username="carla")


@pytest.fixture
def fresh(make_agent):
    return make_agent("procurement-agent", assessed=False)


def test_first_assessment_is_version_1_and_sets_the_current_profile(fresh, compliance):
    assessment = assess_agent(fresh, answers=ANSWERS, by=compliance)
    assert assessment.version == 1 and assessment.previous is None
    assert assessment.reason == "initial assessment"
    assert assessment.base_security == Decimal("0.6667")
    assert assessment.risk_percent == Decimal("65.27")
    assert assessment.assessed_by == compliance

    agent = Agent.objects.get(pk=fresh.pk)
    assert agent.is_assessed
    assert (agent.risk_percent, agent.risk_tier, agent.risk_profile_score) == (
        Decimal("65.27"),
        3,
        Decimal("34.73"),
    )
    # SPEC §5.1 with behavioural = alignment = 100 (scenario: 73.89 → trust tier 3).
    assert (agent.trust_score, agent.trust_tier, agent.effective_tier) == (Decimal("73.89"), 3, 3)


def test_the_event_is_recorded_with_the_documented_payload(fresh, compliance):
    assessment = assess_agent(fresh, answers=ANSWERS, by=compliance, reason="go-live review")
    integrate()
    (event,) = events_of("assessment.completed")
    assert event.id == assessment.event_id
    assert event.agent_id == fresh.id
    assert event.actor == "user:carla"
    assert event.reason == "go-live review"
    assert set(event.payload) == PAYLOAD_KEYS  # no "previous" on version 1 (docs/events.md)
    assert event.payload["answers"] == ANSWERS
    assert event.payload["risk_percent"] == "65.27"
    assert event.payload["base_security"] == "0.6667"
    assert event.payload["trust_score"] == "73.89"
    assert event.payload["version"] == 1
    assert event.log.seq > 0  # integrated into the signed log


def test_reassessment_needs_a_reason_and_records_the_previous_values(fresh, compliance):
    assess_agent(fresh, answers=ANSWERS, by=compliance)
    changed = dict(ANSWERS, safety_impact="low")
    with pytest.raises(Invalid) as caught:
        assess_agent(fresh, answers=changed, by=compliance, reason="  ")
    assert "reason" in caught.value.fields
    assert RiskAssessment.objects.filter(agent=fresh).count() == 1

    second = assess_agent(fresh, answers=changed, by=compliance, reason="safety review")
    assert second.version == 2 and second.previous.version == 1
    assert second.risk_percent == Decimal("66.92")
    assert [c["key"] for c in second.changes()] == ["safety_impact"]
    event = events_of("assessment.completed")[-1]
    assert event.payload["previous"] == {
        "version": 1,
        "answers": ANSWERS,
        "risk_percent": "65.27",
        "risk_tier": 3,
    }
    assert Agent.objects.get(pk=fresh.pk).risk_percent == Decimal("66.92")


def test_versions_are_numbered_per_agent(make_agent, compliance):
    first, second = make_agent("a", assessed=False), make_agent("b", assessed=False)
    assess_agent(first, answers=ANSWERS, by=compliance)
    assess_agent(first, answers=ANSWERS, by=compliance, reason="again")
    assert assess_agent(second, answers=ANSWERS, by=compliance).version == 1


def test_trust_uses_the_agents_current_behaviour_and_alignment(fresh, compliance):
    Agent.objects.filter(pk=fresh.pk).update(behavioral=Decimal("40"), alignment=Decimal("50"))
    assessment = assess_agent(fresh, answers=ANSWERS, by=compliance)
    # 0.40·34.73 + 0.35·40 + 0.25·50 = 40.392 → trust tier 4, stricter than risk tier 3.
    assert assessment.trust_score == Decimal("40.39")
    assert (assessment.trust_tier, assessment.effective_tier) == (4, 4)
    agent = Agent.objects.get(pk=fresh.pk)
    assert (agent.trust_tier, agent.effective_tier) == (4, 4)


def test_a_lower_risk_reassessment_lowers_the_risk_tier_at_once(fresh, compliance):
    assess_agent(fresh, answers=ANSWERS, by=compliance)
    assessment = assess_agent(
        fresh, answers=BY_NAME["best_case"]["answers"], by=compliance, reason="scope reduced"
    )
    agent = Agent.objects.get(pk=fresh.pk)
    assert (agent.risk_tier, agent.trust_score) == (1, Decimal("96.19"))
    # SPEC §5.4: a better *trust* tier applies only after the score has stayed at or above
    # its threshold for 7 consecutive days (tests/trust covers the upgrade), so until then
    # trust tier 3 still sets the effective tier.
    assert (agent.trust_tier, agent.effective_tier) == (3, 3)
    assert (assessment.trust_tier, assessment.effective_tier) == (3, 3)


def test_revoked_agents_cannot_be_assessed(fresh, compliance, admin_user):
    console_services.revoke_agent(fresh, by=admin_user, reason="retired")
    with pytest.raises(Conflict) as caught:
        assess_agent(fresh, answers=ANSWERS, by=compliance)
    assert caught.value.code == "agent_revoked"
    assert not RiskAssessment.objects.exists()
    assert events_of("assessment.completed") == []


def test_invalid_answers_name_each_field_under_answers(fresh, compliance):
    with pytest.raises(Invalid) as caught:
        assess_agent(fresh, answers={"attack_vector": "moon"}, by=compliance)
    fields = caught.value.fields
    assert len(fields) == 14
    assert "answers.attack_vector" in fields and "answers.safety_impact" in fields


def test_an_outdated_expected_version_is_refused(fresh, compliance):
    assess_agent(fresh, answers=ANSWERS, by=compliance, expected_version=0)
    with pytest.raises(Conflict) as caught:
        assess_agent(fresh, answers=ANSWERS, by=compliance, reason="x", expected_version=0)
    assert caught.value.code == "assessment_outdated"
    assert assess_agent(fresh, answers=ANSWERS, by=compliance, reason="x", expected_version=1)


def test_the_agent_changed_hint_is_sent_after_commit(
    fresh, compliance, django_capture_on_commit_callbacks
):
    with (
        mock.patch("console.hints.send") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assess_agent(fresh, answers=ANSWERS, by=compliance)
        assert send.call_count == 0
    groups = [call.args[0] for call in send.call_args_list]
    assert groups == ["fleet", f"agent.{fresh.id}"]
    assert send.call_args_list[0].args[1]["agent_id"] == str(fresh.id)


# --- immutability ---------------------------------------------------------------------
@pytest.fixture
def stored(fresh, compliance):
    return assess_agent(fresh, answers=ANSWERS, by=compliance)


def test_the_orm_refuses_to_change_or_delete_a_version(stored):
    stored.reason = "rewritten"
    with pytest.raises(ImmutableRecord):
        stored.save()
    with pytest.raises(ImmutableRecord):
        stored.delete()
    with pytest.raises(ImmutableRecord):
        RiskAssessment.objects.filter(pk=stored.pk).update(risk_tier=1)
    with pytest.raises(ImmutableRecord):
        RiskAssessment.objects.all().delete()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE assessments_riskassessment SET risk_tier = 1",
        "DELETE FROM assessments_riskassessment",
    ],
)
def test_the_database_refuses_updates_and_deletes(stored, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert RiskAssessment.objects.get(pk=stored.pk).risk_tier == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
def test_the_database_refuses_truncate(stored):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # Fire the deferred FK checks of this test's inserts first; otherwise PostgreSQL
        # refuses the TRUNCATE for "pending trigger events" before our trigger is reached.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE assessments_riskassessment CASCADE")


def test_the_database_requires_a_reason_from_version_2(stored, compliance):
    fields = {
        f.name: getattr(stored, f.name)
        for f in RiskAssessment._meta.concrete_fields
        if f.name not in {"id", "created_at"}
    }
    fields.update(version=2, previous=stored, reason="", event_id=stored.event_id.hex[::-1])
    with pytest.raises(IntegrityError, match="reason_after_v1"), transaction.atomic():
        RiskAssessment.objects.create(**fields)
    fields.update(version=1, previous=None, reason="dup")
    with pytest.raises(IntegrityError, match="agent_version|agent_id"), transaction.atomic():
        RiskAssessment.objects.create(**fields)  # agent + version is unique
