"""Trust services (SPEC §5.5): history rows and events per change, idempotent tasks, worse
tiers with alerts and reviews, the periodic pass, manual recalculation, alerts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from audit.models import GovernanceEvent
from audit.services import record
from console import services as console_services
from console.errors import Conflict
from console.models import Agent
from tests.helpers import events_of
from tests.trust import events as ev
from tests.trust.events import DAY, T0, at
from trust import hooks, reducer, services, tasks
from trust.models import Alert, ImmutableRecord, TrustHistory, TrustState

MIDNIGHT = T0.replace(hour=0)


def midnight(days: int, minutes: int = 20):
    """A moment just after the periodic task may evaluate day boundary ``days``."""
    return MIDNIGHT + days * DAY + timedelta(minutes=minutes)


@pytest.fixture
def agent(admin_user):
    return ev.register_assessed(admin_user, "procurement")  # 73.89, trust tier 3, risk tier 3


@pytest.fixture
def reviews():
    with mock.patch("approvals.services.open_review") as open_review:
        yield open_review


def history(agent) -> list[TrustHistory]:
    return list(TrustHistory.objects.filter(agent=agent).order_by("id"))


def fresh(agent) -> Agent:
    return Agent.objects.get(pk=agent.pk)


# --- changes, rows, events ------------------------------------------------------------
def test_the_first_assessment_starts_the_history(agent):
    (row,) = history(agent)
    assert row.change_type == "reassessment"
    assert (row.previous_score, row.new_score, row.previous_tier, row.new_tier) == (
        None,
        Decimal("73.89"),
        None,
        3,
    )
    assert row.risk_profile_delta == Decimal("34.73")
    state = TrustState.objects.get(agent=agent)
    assert state.last_seq > 0 and state.load().trust_score == Decimal("73.89")


def test_violations_write_history_rows_and_events(agent):
    with at(T0 + timedelta(hours=1)):
        session = ev.open_session(agent)
        cause = ev.violation(agent, session, "major", name="contract.commit")
    row = history(agent)[-1]
    assert row.change_type == "violation"
    assert (row.previous_score, row.new_score) == (Decimal("73.89"), Decimal("68.64"))
    assert (row.behavioral_delta, row.alignment_delta) == (Decimal("-15"), Decimal("0"))
    assert row.evaluated_by == "system:recompute_trust"
    assert row.cause_event_id == cause.id
    assert "contract.commit" in row.change_reason
    assert row.effective_at == T0 + timedelta(hours=1)
    agent = fresh(agent)
    assert (agent.behavioral, agent.trust_score, agent.trust_tier) == (
        Decimal("85.00"),
        Decimal("68.64"),
        3,
    )
    (event,) = [e for e in events_of("trust.changed") if e.payload["change_type"] == "violation"]
    assert event.id == row.event_id and event.actor == "system:recompute_trust"
    assert event.agent_id == agent.id
    assert {
        "previous_score",
        "new_score",
        "previous_tier",
        "new_tier",
        "behavioral_delta",
        "alignment_delta",
        "change_type",
        "cause_event_id",
    } <= set(event.payload)
    assert event.payload["new_score"] == "68.64" and event.payload["cause_event_id"] == str(
        cause.id
    )


def test_an_allowed_action_schedules_nothing_but_is_counted_later(agent):
    with at(T0):
        session = ev.open_session(agent)
        with mock.patch.object(tasks.recompute_trust, "delay") as delay:
            ev.evaluated(agent, session)
            ev.decided(agent, result="approved")
        delay.assert_not_called()
        ev.evaluated(agent, session, verdict="BLOCK", in_scope=False, severity="major")
        ev.close_session(session)
    row = history(agent)[-1]
    assert row.change_type == "alignment" and "1 of 2 actions" in row.change_reason


def test_replaying_the_task_never_double_applies(agent):
    with at(T0 + timedelta(hours=1)):
        cause = ev.violation(agent, None, "critical")
    rows = len(history(agent))
    for _ in range(3):
        assert tasks.recompute_trust.apply(args=[str(agent.id), str(cause.id)]).get() == 0
        assert services.recompute_trust(agent.id, cause.id) == 0
    assert len(history(agent)) == rows
    assert fresh(agent).behavioral == Decimal("75.00")
    # The database refuses a second row for the same cause even if a bug tried.
    first = history(agent)[-1]
    with pytest.raises(IntegrityError), transaction.atomic():
        TrustHistory.objects.create(
            agent=agent,
            behavioral=0,
            alignment=0,
            risk_profile_delta=0,
            behavioral_delta=0,
            alignment_delta=0,
            change_type="violation",
            change_reason="again",
            evaluated_by="system:recompute_trust",
            cause_event_id=first.cause_event_id,
            event_id=cause.id,
            effective_at=first.effective_at,
        )


def test_events_are_applied_in_log_order_whatever_order_the_tasks_run(agent):
    with at(T0 + timedelta(hours=1)):
        with mock.patch.object(tasks.recompute_trust, "delay"):
            first = ev.violation(agent, None, "minor")
            second = ev.decided(agent, result="rejected")
    # The task of the second event runs first: it applies both, in seq order.
    assert services.recompute_trust(agent.id, second.id) == 2
    assert services.recompute_trust(agent.id, first.id) == 0
    rows = history(agent)[-2:]
    assert [r.cause_event_id for r in rows] == [first.id, second.id]
    assert fresh(agent).behavioral == Decimal("93.00")


def test_a_worse_tier_records_tier_changed_an_alert_and_a_review(agent, reviews):
    with at(T0 + timedelta(hours=1)):
        session = ev.open_session(agent)
        ev.violation(agent, session, "critical")  # 65.14
        ev.violation(agent, session, "critical")  # 56.39
        reviews.assert_not_called()
        cause = ev.violation(agent, session, "critical")  # 47.64 → tier 4
    agent = fresh(agent)
    assert (agent.trust_score, agent.trust_tier, agent.effective_tier) == (
        Decimal("47.64"),
        4,
        4,
    )
    (tier_event,) = events_of("tier.changed")
    assert tier_event.payload == {
        "from": 3,
        "to": 4,
        "trust_score": "47.64",
        "effective_tier": 4,
    }
    (alert,) = Alert.objects.filter(agent=agent)
    assert alert.kind == "tier_worsened" and alert.is_open
    assert alert.cause_event_id == cause.id
    assert (alert.previous_tier, alert.new_tier) == (3, 4)
    (raised,) = events_of("alert.raised")
    assert raised.id == alert.event_id and raised.payload["kind"] == "tier_worsened"
    reviews.assert_called_once()
    args, kwargs = reviews.call_args
    assert args[0].pk == agent.pk
    assert kwargs["kind"] == "tier_worsened"
    assert kwargs["cause_event_id"] == str(cause.id)
    assert (kwargs["previous_tier"], kwargs["new_tier"]) == (3, 4)
    assert "worsened from 3 to 4" in kwargs["reason"]


def test_a_failing_review_does_not_block_the_trust_change(agent, reviews):
    reviews.side_effect = RuntimeError("queue unavailable")
    with at(T0 + timedelta(hours=1)):
        for _ in range(3):
            ev.violation(agent, None, "critical")
    assert fresh(agent).trust_tier == 4  # applied anyway
    assert Alert.objects.filter(agent=agent, kind="tier_worsened").exists()
    reviews.assert_called_once()


def test_approval_outcomes_move_behavioural(agent):
    with at(T0):
        ev.decided(agent, result="rejected")
        ev.expired(agent)
        ev.decided(agent, result="approved")
        ev.decided(agent, result="pending")
        ev.decided(agent, result="rejected", kind="reauthorization")
    assert fresh(agent).behavioral == Decimal("97.00")
    assert [r.behavioral_delta for r in history(agent) if r.change_type == "approval_outcome"] == [
        Decimal("-2"),
        Decimal("-1"),
    ]


def test_a_reassessment_is_recorded(agent, admin_user):
    with at(T0 + DAY):
        ev.reassess(agent, admin_user, vector="best_case", reason="scope reduced")
    row = history(agent)[-1]
    assert row.change_type == "reassessment" and row.cause_event_id is not None
    assert (row.previous_score, row.new_score) == (Decimal("73.89"), Decimal("96.19"))
    assert row.new_tier == 3  # a better trust tier waits 7 days (SPEC §5.4)
    assert fresh(agent).effective_tier == 3


def test_an_agent_given_a_risk_tier_outside_the_log_keeps_it(make_agent):
    agent = make_agent("helper-assessed", tier=2)  # tests.helpers.mark_assessed
    with at(T0):
        ev.violation(agent, None, "major")
    agent = fresh(agent)
    assert agent.behavioral == Decimal("85.00")
    assert (agent.risk_tier, agent.effective_tier, agent.trust_score) == (2, 2, None)


def test_recompute_of_an_unknown_agent_does_nothing(db):
    assert services.recompute_trust("6c2f1d2e-2b1b-4f4f-9a55-5a8d2c1e0f11") == 0


# --- the periodic pass ----------------------------------------------------------------
def test_the_periodic_pass_recovers_after_7_full_days(agent):
    with at(T0 + timedelta(hours=1)):
        ev.violation(agent, None, "major")
    assert services.advance_trust_clock(now=midnight(8))["changes"] == 0
    assert services.advance_trust_clock(now=midnight(9, minutes=10))["changes"] == 0  # settling
    result = services.advance_trust_clock(now=midnight(9))
    assert result["changes"] == 1
    row = history(agent)[-1]
    assert row.change_type == "recovery" and row.behavioral_delta == 1
    assert row.evaluated_by == "system:advance_trust_clock" and row.cause_event_id is None
    assert row.effective_at == MIDNIGHT + 9 * DAY
    # Replayed (beat fires twice, a redelivered task): nothing more.
    assert services.advance_trust_clock(now=midnight(9, minutes=50))["changes"] == 0
    assert services.advance_trust_clock(now=midnight(12))["changes"] == 3
    assert fresh(agent).behavioral == Decimal("89.00")
    (event,) = [e for e in events_of("trust.changed") if e.id == row.event_id]
    assert event.actor == "system:advance_trust_clock"


def test_the_periodic_pass_applies_a_better_tier_after_7_days(agent, admin_user):
    with at(T0 + DAY):
        ev.reassess(agent, admin_user, vector="best_case", reason="scope reduced")
    services.advance_trust_clock(now=midnight(8))
    assert fresh(agent).trust_tier == 3
    services.advance_trust_clock(now=midnight(9))
    agent = fresh(agent)
    assert (agent.trust_tier, agent.effective_tier) == (1, 1)
    row = history(agent)[-1]
    assert (row.change_type, row.previous_tier, row.new_tier) == ("recovery", 3, 1)
    tier_event = events_of("tier.changed")[-1]
    assert (tier_event.payload["from"], tier_event.payload["to"]) == (3, 1)
    assert not Alert.objects.exists()  # better tiers raise nothing


def test_a_velocity_decline_raises_an_alert_and_a_review(admin_user, reviews):
    agent = ev.register_assessed(admin_user, "best", vector="best_case")  # 96.19, tier 1
    for week in range(3):
        with at(T0 + timedelta(days=1 + 7 * week)):
            ev.violation(agent, None, "major")
    reviews.reset_mock()
    services.advance_trust_clock(now=midnight(30))
    (alert,) = Alert.objects.filter(agent=agent, kind="velocity")
    assert alert.cause_event_id is None and alert.effective_at == MIDNIGHT + 22 * DAY
    assert "in each of the last 3 7-day windows" in alert.message
    reviews.assert_called_once()
    kwargs = reviews.call_args.kwargs
    assert kwargs["kind"] == "velocity" and kwargs["cause_event_id"] == alert.event_id
    assert kwargs["previous_tier"] == kwargs["new_tier"] == fresh(agent).trust_tier
    raised = [e for e in events_of("alert.raised") if e.payload["kind"] == "velocity"]
    assert raised[0].actor == "system:advance_trust_clock"


def test_an_event_whose_task_was_lost_is_picked_up_by_the_periodic_pass(agent):
    with at(T0 + timedelta(hours=1)), ev.committed():
        # Recorded, but the hook is never called (broker down at commit, say).
        record(
            "approval.expired",
            actor="system:approvals",
            agent_id=agent.id,
            result="expired",
            payload={"approval_id": "p", "kind": "action"},
        )
    assert fresh(agent).behavioral == 100
    result = services.advance_trust_clock(now=T0 + timedelta(hours=2))
    assert result["caught_up"] == 1
    assert fresh(agent).behavioral == Decimal("99.00")


def test_no_alert_or_review_for_a_revoked_agent(agent, admin_user, reviews):
    console_services.revoke_agent(agent, by=admin_user, reason="retired")
    with at(T0 + timedelta(hours=1)):
        for _ in range(3):
            ev.violation(agent, None, "critical")
    assert fresh(agent).trust_tier == 4
    assert not Alert.objects.exists()
    reviews.assert_not_called()


# --- manual recalculation and alerts --------------------------------------------------
def test_manual_recalculation_records_a_row_even_when_nothing_changes(agent, admin_user):
    with at(T0 + timedelta(hours=1)):
        ev.violation(agent, None, "major")
        row = services.recalculate_trust(agent, by=admin_user, reason="audit request")
    assert row.change_type == "manual_recalculation"
    assert row.evaluated_by == "user:root-admin"
    assert row.previous_score == row.new_score == Decimal("68.64")
    assert "matched the incremental result" in row.change_reason
    (event,) = events_of("trust.recalculated")
    assert event.id == row.event_id == row.cause_event_id
    assert event.payload["matched"] is True and event.actor == "user:root-admin"


def test_manual_recalculation_corrects_a_drifted_state(agent, admin_user, reviews):
    with at(T0 + timedelta(hours=1)):
        ev.violation(agent, None, "major")
    # Someone (or a bug) changed the cached numbers behind the log's back.
    state = TrustState.objects.get(agent=agent)
    drifted = state.load()
    drifted.behavioral, drifted.trust_score = Decimal("100.00"), Decimal("73.89")
    TrustState.objects.filter(pk=state.pk).update(data=drifted.to_json())
    Agent.objects.filter(pk=agent.pk).update(behavioral=100, trust_score=Decimal("73.89"))
    with at(T0 + timedelta(hours=2)):
        row = services.recalculate_trust(agent, by=admin_user)
    assert (row.previous_score, row.new_score) == (Decimal("73.89"), Decimal("68.64"))
    assert row.behavioral_delta == Decimal("-15") and "corrected" in row.change_reason
    assert fresh(agent).trust_score == Decimal("68.64")
    assert events_of("trust.recalculated")[0].payload["matched"] is False


def test_manual_recalculation_needs_trust_events(make_agent, admin_user):
    agent = make_agent("never-assessed", assessed=False)
    TrustState.objects.all().delete()
    with mock.patch("trust.selectors.trust_events", return_value=[]):
        with pytest.raises(Conflict):
            services.recalculate_trust(agent, by=admin_user)


def test_an_alert_is_acknowledged_once(agent, admin_user, reviews):
    with at(T0):
        for _ in range(3):
            ev.violation(agent, None, "critical")
    alert = Alert.objects.get(agent=agent)
    done = services.acknowledge_alert(alert, by=admin_user, note="looking into it")
    assert not done.is_open and done.acknowledged_by == admin_user
    with pytest.raises(Conflict):
        services.acknowledge_alert(alert, by=admin_user)
    (event,) = events_of("alert.acknowledged")
    assert event.payload["alert_id"] == str(alert.id) and event.reason == "looking into it"


# --- the hook -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event_type", "result", "payload", "moves"),
    [
        ("action.evaluated", "success", {"violation": None}, False),
        ("action.evaluated", "denied", {"violation": {"severity": "minor"}}, True),
        ("action.completed", "success", {"status": "ok"}, False),
        ("action.completed", "denied", {"violation": {"severity": "critical"}}, True),
        ("approval.decided", "approved", {"kind": "action"}, False),
        ("approval.decided", "pending", {"kind": "action"}, False),
        ("approval.decided", "rejected", {"kind": "action"}, True),
        ("approval.decided", "rejected", {"kind": "reauthorization"}, False),
        ("approval.expired", "expired", {"kind": "action"}, True),
        ("session.ended", "success", {}, True),
        ("session.halted", "halted", {}, True),
        ("session.revoked", "revoked", {}, True),
        ("assessment.completed", "success", {}, True),
        ("agent.paused", "success", {}, False),
    ],
)
def test_which_events_move_trust(event_type, result, payload, moves):
    assert hooks.moves_trust(event_type, result, payload) is moves


def test_the_hook_schedules_after_commit_only(agent, django_capture_on_commit_callbacks):
    with at(T0), mock.patch.object(tasks.recompute_trust, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            with transaction.atomic():
                event = record(
                    "approval.expired",
                    actor="system:approvals",
                    agent_id=agent.id,
                    result="expired",
                    payload={"approval_id": "p", "kind": "action"},
                )
                hooks.event_recorded(event)
                delay.assert_not_called()
        for callback in callbacks:
            callback()
    delay.assert_called_once_with(str(agent.id), str(event.id))


# --- append-only ----------------------------------------------------------------------
def test_trust_history_refuses_changes_through_the_orm(agent):
    row = history(agent)[0]
    with pytest.raises(ImmutableRecord):
        row.save()
    with pytest.raises(ImmutableRecord):
        row.delete()
    with pytest.raises(ImmutableRecord):
        TrustHistory.objects.filter(pk=row.pk).update(change_reason="edited")
    with pytest.raises(ImmutableRecord):
        TrustHistory.objects.filter(pk=row.pk).delete()


@pytest.mark.parametrize("statement", ["UPDATE {t} SET change_reason = 'x'", "DELETE FROM {t}"])
def test_trust_history_refuses_changes_in_the_database(agent, statement):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(t=TrustHistory._meta.db_table))
    assert TrustHistory.objects.filter(agent=agent).count() == 1


@pytest.mark.production
def test_trust_history_refuses_truncate(agent):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TrustHistory._meta.db_table} CASCADE")
    assert TrustHistory.objects.count() == 1


def test_reducer_sees_only_its_event_types(agent):
    consumed = set(reducer.CONSUMED_TYPES)
    seen = set(
        GovernanceEvent.objects.filter(agent_id=agent.id).values_list("event_type", flat=True)
    )
    assert {"agent.registered", "assessment.completed"} <= seen & consumed
    assert "trust.changed" in seen - consumed  # its own output is never an input
