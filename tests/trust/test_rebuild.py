"""``rebuild_trust``: a recorded history replayed from the event log gives exactly the
incrementally maintained result (SPEC §5.5), and corrects a state that drifted."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from audit.services import record
from console.models import Agent
from tests.helpers import events_of
from tests.trust import events as ev
from tests.trust.events import DAY, T0, at
from trust import reducer, selectors, services
from trust.models import TrustHistory, TrustState

MIDNIGHT = T0.replace(hour=0)
END = MIDNIGHT + 70 * DAY + timedelta(hours=1)


def drive(agents, rng: random.Random, by) -> None:
    """Seven weeks of mixed traffic for a few agents on one timeline, through the
    incremental path, with the periodic pass running now and then in between."""
    moment = T0 + timedelta(hours=1)
    sessions: dict = {agent.pk: None for agent in agents}
    while moment < MIDNIGHT + 50 * DAY:
        agent = rng.choice(agents)
        session = sessions[agent.pk]
        with at(moment):
            if session is None:
                session = sessions[agent.pk] = ev.open_session(agent)
            roll = rng.random()
            if roll < 0.45:
                ev.evaluated(agent, session)
            elif roll < 0.52:
                ev.evaluated(agent, session, verdict="BLOCK", in_scope=False, severity="major")
            elif roll < 0.56:
                ev.violation(agent, session, rng.choice(["minor", "major", "critical"]))
            elif roll < 0.62:
                ev.decided(agent, result=rng.choice(["rejected", "approved", "pending"]))
            elif roll < 0.65:
                ev.expired(agent)
            elif roll < 0.80:
                ev.close_session(session, "halted" if rng.random() < 0.2 else "ended")
                sessions[agent.pk] = None
            elif roll < 0.81:
                ev.reassess(agent, by, vector=rng.choice(["best_case", "procurement_agent"]))
        if rng.random() < 0.25:
            services.advance_trust_clock(now=moment + timedelta(minutes=rng.randint(1, 60)))
        moment += timedelta(hours=rng.choice([1, 2, 5, 9, 20, 30]))
    services.advance_trust_clock(now=END)


@pytest.fixture
def fleet(admin_user):
    agents = [
        ev.register_assessed(
            admin_user, f"agent-{index}", vector=vector, settings={"pause_on_halt": False}
        )
        for index, vector in enumerate(["procurement_agent", "best_case", "procurement_agent"])
    ]
    drive(agents, random.Random(6), admin_user)
    return [Agent.objects.get(pk=agent.pk) for agent in agents]


def snapshot(agents):
    return {
        agent.pk: (
            Agent.objects.values_list(
                "behavioral", "alignment", "trust_score", "trust_tier", "effective_tier"
            ).get(pk=agent.pk),
            TrustState.objects.get(agent=agent).load(),
        )
        for agent in agents
    }


def test_a_recorded_history_rebuilds_to_the_cent(fleet):
    before = snapshot(fleet)
    assert len({numbers for numbers, _ in before.values()}) == 3  # three different stories
    assert TrustHistory.objects.filter(change_type="recovery").exists()
    report = services.rebuild_trust(now=END)
    assert (report.agents, report.unchanged, report.caught_up, report.corrected) == (3, 3, 0, 0)
    assert report.events > 60
    assert snapshot(fleet) == before
    assert not TrustHistory.objects.filter(change_type="manual_recalculation").exists()


def test_the_rebuilds_change_records_are_the_history_rows(fleet):
    for agent in fleet:
        _, changes = reducer.replay(selectors.trust_events(agent.pk), END)
        rebuilt = [
            (
                c.change_type,
                c.at,
                c.previous_score,
                c.new_score,
                c.previous_tier,
                c.new_tier,
                c.behavioral_delta,
                c.alignment_delta,
                str(c.cause_event_id) if c.cause_event_id else None,
                c.reason,
            )
            for c in changes
            if isinstance(c, reducer.Change)
        ]
        stored = [
            (
                r.change_type,
                r.effective_at,
                r.previous_score,
                r.new_score,
                r.previous_tier,
                r.new_tier,
                r.behavioral_delta,
                r.alignment_delta,
                str(r.cause_event_id) if r.cause_event_id else None,
                r.change_reason,
            )
            for r in TrustHistory.objects.filter(agent=agent).order_by("id")
        ]
        assert rebuilt == stored


def test_a_lost_state_is_rebuilt_identically(fleet):
    before = snapshot(fleet)
    TrustState.objects.all().delete()
    report = services.rebuild_trust(now=END)
    assert report.initialized == 3 and report.corrected == 0
    # The cached numbers already matched: no correction rows were needed.
    assert not TrustHistory.objects.filter(change_type="manual_recalculation").exists()
    assert snapshot(fleet) == before


def test_a_drifted_state_is_corrected_and_explained(fleet):
    victim = fleet[0]
    expected = snapshot(fleet)
    state = TrustState.objects.get(agent=victim)
    wrong = state.load()
    wrong.behavioral = Decimal("12.00")
    wrong.trust_score = Decimal("20.00")
    TrustState.objects.filter(pk=state.pk).update(data=wrong.to_json())
    report = services.rebuild_trust(now=END)
    assert (report.corrected, report.unchanged) == (1, 2)
    assert report.corrected_agents == [str(victim.pk)]
    row = TrustHistory.objects.filter(agent=victim).latest("id")
    assert row.change_type == "manual_recalculation" and row.evaluated_by == "system:rebuild_trust"
    assert row.previous_score == Decimal("20.00")
    (summary,) = events_of("trust.rebuilt")
    assert row.cause_event_id == summary.id and summary.payload["to_write"] == 1
    assert snapshot([victim])[victim.pk] == expected[victim.pk]


def test_a_state_behind_the_log_is_caught_up_the_incremental_way(fleet):
    agent = fleet[1]
    with at(END), ev.committed():
        record(
            "approval.expired",
            actor="system:approvals",
            agent_id=agent.id,
            result="expired",
            payload={"approval_id": "p", "kind": "action"},
        )  # no hook: the incremental state has not seen it
    report = services.rebuild_trust(now=END + timedelta(hours=1))
    assert (report.caught_up, report.corrected) == (1, 0)
    row = TrustHistory.objects.filter(agent=agent).latest("id")
    assert row.change_type == "approval_outcome"
    assert row.evaluated_by == "system:recompute_trust"


def test_an_event_committed_after_its_day_boundary_is_recomputed_from_the_log(admin_user):
    """The one way time can go backwards: a transaction outlives the settling delay and
    commits an event stamped before a boundary the periodic pass already evaluated."""
    agent = ev.register_assessed(admin_user, "late")
    with at(T0 + timedelta(hours=1)):
        ev.violation(agent, None, "major")  # behavioural 85
    services.advance_trust_clock(now=MIDNIGHT + 12 * DAY + timedelta(hours=1))  # +4 recovery
    assert Agent.objects.get(pk=agent.pk).behavioral == Decimal("89.00")  # days 9–12
    with at(MIDNIGHT + 10 * DAY + timedelta(hours=5)):  # stamped before two evaluated days
        late = ev.violation(agent, None, "minor")
    row = TrustHistory.objects.filter(agent=agent).latest("id")
    assert row.change_type == "manual_recalculation" and row.cause_event_id == late.id
    assert row.evaluated_by == "system:recompute_trust"
    # In log order the minor violation precedes days 11 and 12: no recovery on them.
    assert Agent.objects.get(pk=agent.pk).behavioral == Decimal("82.00")  # 85+2−5
    report = services.rebuild_trust(now=MIDNIGHT + 12 * DAY + timedelta(hours=2))
    assert (report.unchanged, report.corrected) == (1, 0)


def test_the_command_checks_and_rebuilds(fleet, capsys):
    call_command("rebuild_trust", "--check")
    out = capsys.readouterr().out
    assert "3 agents" in out and "3 unchanged" in out
    TrustState.objects.filter(agent=fleet[2]).delete()
    with pytest.raises(CommandError):
        call_command("rebuild_trust", "--check", "--agent", str(fleet[2].pk))
    call_command("rebuild_trust", "--agent", str(fleet[2].pk))
    assert "1 initialised" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("rebuild_trust", "--agent", "nope")


@pytest.mark.production
def test_a_parallel_rebuild_replays_exactly_the_same(transactional_db, admin_user):
    agents = [ev.register_assessed(admin_user, f"shard-{index}") for index in range(6)]
    for index, agent in enumerate(agents):
        with at(T0 + timedelta(hours=1 + index)):
            ev.violation(agent, None, ["minor", "major", "critical"][index % 3])
    sequential = services.rebuild_trust(now=END, write=False)
    parallel = services.rebuild_trust(now=END, write=False, workers=3)
    assert parallel.agents == sequential.agents == 6
    assert parallel.events == sequential.events
    # Every stored state is behind END (no periodic pass ran): both see the same.
    assert (parallel.caught_up, parallel.corrected) == (sequential.caught_up, 0)
    shards = {selectors.shard_of(str(agent.pk), 3) for agent in agents}
    assert shards <= {0, 1, 2}
