"""The trust reducer (trust/reducer.py): the time rules of SPEC §5.2–§5.4, and the
properties that make the incremental path and a rebuild agree."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trust import reducer
from trust.reducer import DAY, Change, Event, State

START = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)  # Monday 09:00
MIDNIGHT = datetime(2031, 3, 3, tzinfo=UTC)
_ids = itertools.count(1)
PROCUREMENT = {"risk_profile_score": "34.73", "risk_tier": 3, "version": 1}
BEST_CASE = {"risk_profile_score": "90.47", "risk_tier": 1, "version": 2}


def ev(kind: str, at: datetime, **kw) -> Event:
    n = next(_ids)
    session = kw.pop("session", "s1")
    if kind == "registered":
        return Event(id=f"e{n}", seq=n, type="agent.registered", at=at)
    if kind == "assessed":
        return Event(
            id=f"e{n}", seq=n, type="assessment.completed", at=at, payload=kw or PROCUREMENT
        )
    if kind == "allow":
        return Event(
            id=f"e{n}",
            seq=n,
            type="action.evaluated",
            at=at,
            session_id=session,
            verdict=kw.get("verdict", "ALLOW"),
            payload={"in_scope": kw.get("in_scope", True), "violation": None},
        )
    if kind == "violation":
        severity = kw.get("severity", "major")
        return Event(
            id=f"e{n}",
            seq=n,
            type="action.evaluated",
            at=at,
            session_id=session,
            verdict="HALT" if severity == "critical" else "BLOCK",
            result="denied",
            payload={
                "in_scope": kw.get("in_scope", True),
                "violation": {"severity": severity},
                "source": "rule:test",
                "action": {"name": "contract.commit"},
            },
        )
    if kind == "canary":
        return Event(
            id=f"e{n}",
            seq=n,
            type="action.completed",
            at=at,
            session_id=session,
            verdict="HALT",
            payload={"action_id": "a1", "violation": {"severity": "critical"}},
        )
    if kind in ("rejected", "approved", "pending"):
        return Event(
            id=f"e{n}",
            seq=n,
            type="approval.decided",
            at=at,
            result=kind,
            payload={"approval_id": "p1", "kind": kw.get("approval_kind", "action")},
        )
    if kind == "expired":
        return Event(
            id=f"e{n}",
            seq=n,
            type="approval.expired",
            at=at,
            result="expired",
            payload={"approval_id": "p1", "kind": kw.get("approval_kind", "action")},
        )
    if kind in ("ended", "halted", "revoked"):
        return Event(id=f"e{n}", seq=n, type=f"session.{kind}", at=at, session_id=session)
    raise ValueError(kind)


def assessed_state(at: datetime = START, payload=None) -> State:
    state = State()
    reducer.apply(state, ev("registered", at))
    reducer.apply(state, ev("assessed", at, **(payload or PROCUREMENT)))
    return state


def changes(outcomes) -> list[Change]:
    return [o for o in outcomes if isinstance(o, Change)]


def alerts(outcomes) -> list[reducer.Alert]:
    return [o for o in outcomes if isinstance(o, reducer.Alert)]


# --- events ---------------------------------------------------------------------------
def test_a_new_agent_starts_at_100_100_and_gets_its_score_from_the_assessment():
    state = State()
    reducer.apply(state, ev("registered", START))
    assert (state.behavioral, state.alignment, state.trust_score) == (100, 100, None)
    (change,) = reducer.apply(state, ev("assessed", START))
    assert change.change_type == "reassessment"
    assert (change.previous_score, change.new_score, change.new_tier) == (None, Decimal("73.89"), 3)
    assert state.effective_tier == 3


def test_a_violation_is_a_penalty_with_its_deltas_and_reason():
    state = assessed_state()
    (change,) = reducer.apply(state, ev("violation", START + timedelta(hours=1)))
    assert change.change_type == "violation"
    assert change.behavioral_delta == Decimal("-15")
    assert change.alignment_delta == 0
    assert (change.previous_score, change.new_score) == (Decimal("73.89"), Decimal("68.64"))
    assert "major violation, behavioural −15" in change.reason
    assert "rule:test" in change.reason
    assert change.evaluated_by == "system:recompute_trust"
    assert change.cause_event_id is not None


def test_a_worse_tier_applies_at_once_with_an_alert():
    state = assessed_state()
    reducer.apply(state, ev("violation", START, severity="critical"))  # 65.14, tier 3
    outcomes = reducer.apply(state, ev("violation", START, severity="critical"))  # 56.39
    outcomes += reducer.apply(state, ev("violation", START, severity="major"))  # 51.14
    assert state.trust_tier == 3 and not alerts(outcomes)
    outcomes = reducer.apply(state, ev("violation", START, severity="minor"))  # 49.39
    (change, alert) = outcomes
    assert (change.previous_tier, change.new_tier) == (3, 4) and change.tier_worsened
    assert (alert.kind, alert.previous_tier, alert.new_tier) == ("tier_worsened", 3, 4)
    assert state.effective_tier == 4
    assert "trust tier 3 → 4" in change.reason


def test_approval_outcomes():
    state = assessed_state()
    (rejected,) = reducer.apply(state, ev("rejected", START))
    assert rejected.change_type == "approval_outcome" and rejected.behavioral_delta == -2
    (expired,) = reducer.apply(state, ev("expired", START))
    assert expired.behavioral_delta == -1
    assert reducer.apply(state, ev("approved", START)) == []  # approved costs 0
    assert reducer.apply(state, ev("pending", START)) == []  # four-eyes' first vote
    assert reducer.apply(state, ev("rejected", START, approval_kind="reauthorization")) == []
    assert reducer.apply(state, ev("expired", START, approval_kind="reauthorization")) == []
    assert state.behavioral == Decimal("97")
    assert state.quiet_since == START  # approval outcomes are not violations


def test_session_alignment_counts_actions_in_scope_and_not_blocked():
    state = assessed_state()
    for kwargs in ({}, {}, {"verdict": "REQUIRE_APPROVAL"}, {"in_scope": False}):
        reducer.apply(state, ev("allow", START, **kwargs))
    reducer.apply(state, ev("violation", START))  # BLOCK
    (change,) = reducer.apply(state, ev("ended", START))
    # 3 of 5 aligned → 60 % → alignment 60, trust 0.4·34.73 + 0.35·85 + 0.25·60
    assert change.change_type == "alignment" and change.alignment_delta == -40
    assert state.alignment == Decimal("60.00")
    assert state.trust_score == Decimal("58.64")
    assert "3 of 5 actions" in change.reason


def test_empty_sessions_do_not_count_and_sessions_are_kept_apart():
    state = assessed_state()
    assert reducer.apply(state, ev("ended", START, session="empty")) == []
    reducer.apply(state, ev("allow", START, session="a"))
    reducer.apply(state, ev("allow", START, session="b", in_scope=False))
    (change,) = changes(reducer.apply(state, ev("halted", START, session="b")))
    assert change.alignment == 0 and state.recent_sessions == [Decimal("0.00")]
    reducer.apply(state, ev("revoked", START, session="a"))
    assert state.recent_sessions == [Decimal("100.00"), Decimal("0.00")]
    assert state.alignment == Decimal("51.28")  # (1·100 + 0.95·0) / 1.95
    assert state.open_sessions == {}


def test_a_canary_in_the_output_is_critical_and_unaligns_the_action():
    state = assessed_state()
    reducer.apply(state, ev("allow", START, session="c"))
    (change,) = reducer.apply(state, ev("canary", START, session="c"))
    assert change.change_type == "violation" and change.behavioral_delta == -25
    reducer.apply(state, ev("halted", START, session="c"))
    assert state.recent_sessions == [Decimal("0.00")]


def test_a_violation_of_unknown_severity_counts_as_major():
    state = assessed_state()
    (change,) = reducer.apply(state, ev("violation", START, severity="weird"))
    assert change.behavioral_delta == -15


def test_penalties_before_the_first_assessment_move_behavioural_only():
    state = State()
    reducer.apply(state, ev("registered", START))
    (change,) = reducer.apply(state, ev("violation", START))
    assert (change.previous_score, change.new_score, state.behavioral) == (None, None, 85)
    reducer.apply(state, ev("assessed", START))
    assert state.trust_score == Decimal("68.64")


# --- time -----------------------------------------------------------------------------
def test_recovery_starts_after_7_full_violation_free_days():
    state = assessed_state()
    violated = START + timedelta(hours=1)  # Monday 10:00; its day starts at MIDNIGHT
    reducer.apply(state, ev("violation", violated))
    # Days 1–7 (Tue … next Mon) are the waiting period; day 8 earns +1 at its end.
    assert changes(reducer.advance(state, MIDNIGHT + 8 * DAY)) == []
    assert state.behavioral == 85
    (first,) = changes(reducer.advance(state, MIDNIGHT + 9 * DAY))
    assert first.change_type == "recovery" and first.behavioral_delta == 1
    assert first.at == MIDNIGHT + 9 * DAY
    assert first.cause_event_id is None and first.evaluated_by == "system:advance_trust_clock"
    assert "8 full days without a violation" in first.reason
    more = changes(reducer.advance(state, MIDNIGHT + 12 * DAY + timedelta(hours=5)))
    assert [c.at for c in more] == [MIDNIGHT + (9 + k) * DAY for k in (1, 2, 3)]
    assert state.behavioral == 89


def test_recovery_stops_at_100_and_a_new_violation_restarts_the_wait():
    state = assessed_state()
    reducer.apply(state, ev("violation", START, severity="minor"))  # 95
    reducer.advance(state, MIDNIGHT + 30 * DAY)
    assert state.behavioral == 100
    assert state.trust_score == Decimal("73.89")
    reducer.apply(state, ev("violation", MIDNIGHT + 30 * DAY + timedelta(hours=3)))
    assert changes(reducer.advance(state, MIDNIGHT + 38 * DAY)) == []
    assert len(changes(reducer.advance(state, MIDNIGHT + 39 * DAY))) == 1


def test_recovery_is_half_a_point_a_day_at_effective_tier_4():
    state = assessed_state(payload={"risk_profile_score": "10.00", "risk_tier": 4, "version": 1})
    reducer.apply(state, ev("violation", START))
    assert state.effective_tier == 4
    reducer.advance(state, MIDNIGHT + 11 * DAY)
    assert state.behavioral == Decimal("86.5")  # 85 + 3 × 0.5


def test_a_better_tier_waits_7_consecutive_days():
    state = assessed_state()  # 73.89, tier 3
    reassessed = START + DAY  # Tuesday 09:00: 92.08 would be tier 1
    (change,) = reducer.apply(state, ev("assessed", reassessed, **BEST_CASE))
    assert change.new_score == Decimal("96.19") and change.new_tier == 3
    assert state.effective_tier == 3
    # since + 7 days = next Tuesday 09:00 → the first boundary at or after it is Wednesday.
    assert changes(reducer.advance(state, MIDNIGHT + 8 * DAY)) == []
    (upgrade,) = changes(reducer.advance(state, MIDNIGHT + 9 * DAY))
    assert (upgrade.previous_tier, upgrade.new_tier) == (3, 1)
    assert upgrade.change_type == "recovery" and upgrade.previous_score == upgrade.new_score
    assert "7 consecutive days" in upgrade.reason
    assert (state.trust_tier, state.effective_tier) == (1, 1)


def test_dropping_below_the_threshold_restarts_the_upgrade_wait():
    state = assessed_state()
    reducer.apply(state, ev("assessed", START, **BEST_CASE))  # 96.19
    reducer.apply(state, ev("violation", START + 3 * DAY, severity="minor"))  # 94.44 still ≥ 90
    reducer.apply(state, ev("violation", START + 4 * DAY, severity="major"))  # 89.19 < 90
    reducer.advance(state, MIDNIGHT + 8 * DAY)
    assert state.trust_tier == 2  # ≥ 75 for 7 days: tier 2, not 1
    reducer.advance(state, MIDNIGHT + 40 * DAY)
    assert state.trust_tier == 1  # recovered above 90 and stayed 7 days


def test_velocity_alert_after_three_7_day_windows_of_decline():
    state = assessed_state(payload={"risk_profile_score": "100.00", "risk_tier": 1, "version": 1})
    outcomes = []
    for week in range(3):  # −15 behavioural = −5.25 score each week, no recovery in between
        outcomes += reducer.apply(state, ev("violation", START + timedelta(days=1 + 7 * week)))
    assert state.trust_score == Decimal("84.25")
    outcomes += reducer.advance(state, MIDNIGHT + 40 * DAY)
    assert [a.kind for a in alerts(outcomes)] == ["tier_worsened", "velocity"]  # 1 → 2 at 84.25
    alert = alerts(outcomes)[1]
    # Samples start at the first boundary after registration (day 1); the drops land at
    # the boundaries of days 2, 9 and 16, so day 22 is the first with all three windows.
    assert alert.at == MIDNIGHT + 22 * DAY
    assert "100.00 → 94.75 → 89.50 → 84.25" in alert.message
    assert alert.cause_event_id is None


def test_velocity_fires_once_per_decline_and_rearms():
    state = assessed_state(payload={"risk_profile_score": "100.00", "risk_tier": 1, "version": 1})
    outcomes = []
    # Four weekly drops: the condition holds at 8 boundaries in a row, one alert.
    for day in (1, 8, 15, 22):
        outcomes += reducer.apply(state, ev("violation", START + timedelta(days=day)))
    outcomes += reducer.advance(state, MIDNIGHT + 59 * DAY)
    assert len([a for a in alerts(outcomes) if a.kind == "velocity"]) == 1
    # The condition went false (and the score recovered): a new decline alerts again.
    for day in (60, 67, 74):
        outcomes += reducer.apply(state, ev("violation", START + timedelta(days=day)))
    outcomes += reducer.advance(state, MIDNIGHT + 90 * DAY)
    assert len([a for a in alerts(outcomes) if a.kind == "velocity"]) == 2


def test_no_velocity_alert_for_a_decline_of_exactly_5():
    state = assessed_state(payload={"risk_profile_score": "100.00", "risk_tier": 1, "version": 1})
    # −20 alignment each week = −5.00 score exactly: not "more than 5".
    outcomes = []
    for week in range(3):
        at = START + timedelta(days=1 + 7 * week)
        session = f"w{week}"
        outcomes += reducer.apply(state, ev("allow", at, session=session, in_scope=False))
        outcomes += reducer.apply(state, ev("ended", at, session=session))
    outcomes += reducer.advance(state, MIDNIGHT + 30 * DAY)
    assert not [a for a in alerts(outcomes) if a.kind == "velocity"]


def test_an_event_committed_late_happens_at_the_clock():
    state = assessed_state()
    reducer.advance(state, MIDNIGHT + 5 * DAY)
    late = ev("violation", START + DAY)  # stamped before the clock
    (change,) = reducer.apply(state, late)
    assert change.at == MIDNIGHT + 5 * DAY and state.quiet_since == MIDNIGHT + 5 * DAY


def test_state_survives_json():
    state = assessed_state()
    reducer.apply(state, ev("allow", START, session="x"))
    reducer.apply(state, ev("violation", START + DAY))
    reducer.advance(state, MIDNIGHT + 12 * DAY)
    assert State.from_json(state.to_json()) == state
    assert state.copy() == state and state.copy() is not state


def test_due_boundary_waits_for_late_commits():
    assert reducer.due_boundary(MIDNIGHT + timedelta(minutes=14)) == MIDNIGHT - DAY
    assert reducer.due_boundary(MIDNIGHT + timedelta(minutes=15)) == MIDNIGHT


# --- properties -----------------------------------------------------------------------
KINDS = [
    "allow",
    "allow",
    "allow",
    "out_of_scope",
    "minor",
    "major",
    "critical",
    "canary",
    "rejected",
    "approved",
    "expired",
    "ended",
    "halted",
    "reassess_good",
    "reassess_bad",
]
steps = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(min_value=0, max_value=14 * 24)),
    min_size=1,
    max_size=40,
)


def build_events(plan) -> list[Event]:
    at = START
    session = 0
    events = [ev("registered", at), ev("assessed", at)]
    for kind, gap_hours in plan:
        at = at + timedelta(hours=gap_hours)
        sid = f"s{session}"
        if kind == "allow":
            events.append(ev("allow", at, session=sid))
        elif kind == "out_of_scope":
            events.append(ev("allow", at, session=sid, verdict="BLOCK", in_scope=False))
        elif kind in ("minor", "major", "critical"):
            events.append(ev("violation", at, session=sid, severity=kind))
        elif kind == "canary":
            events.append(ev("canary", at, session=sid))
        elif kind in ("rejected", "approved", "expired"):
            events.append(ev(kind, at))
        elif kind in ("ended", "halted"):
            events.append(ev(kind, at, session=sid))
            session += 1
        elif kind == "reassess_good":
            events.append(ev("assessed", at, **BEST_CASE))
        else:
            events.append(ev("assessed", at, **PROCUREMENT))
    return events


@settings(max_examples=60, deadline=None)
@given(steps, st.integers(min_value=0, max_value=60))
def test_fast_forward_gives_the_same_result_as_every_boundary(plan, tail_days):
    events = build_events(plan)
    until = events[-1].at + timedelta(days=tail_days)
    fast, fast_out = reducer.replay(events, until, fast_forward=True)
    slow, slow_out = reducer.replay(events, until, fast_forward=False)
    assert fast == slow
    assert fast_out == slow_out


@settings(max_examples=60, deadline=None)
@given(steps, st.lists(st.integers(min_value=0, max_value=100), max_size=40), st.data())
def test_incremental_with_periodic_passes_equals_a_replay(plan, pass_points, data):
    """Whatever moments the periodic pass runs at (never past an event not yet in the
    log), applying events one at a time gives exactly the replay's state and records."""
    events = build_events(plan)
    state = State()
    outcomes = []
    for index, event in enumerate(events):
        outcomes += reducer.apply(state, event)
        upcoming = events[index + 1].at if index + 1 < len(events) else None
        if upcoming is not None and data.draw(st.booleans()):
            # A pass between this event and the next evaluates boundaries before the next.
            fraction = data.draw(st.floats(min_value=0, max_value=1))
            moment = event.at + (upcoming - event.at) * fraction
            if moment >= state.clock:
                outcomes += reducer.advance(state, moment)
    end = events[-1].at + timedelta(days=20)
    outcomes += reducer.advance(state, end)
    fresh, fresh_out = reducer.replay(events, end)
    assert state == fresh
    assert outcomes == fresh_out


@settings(max_examples=40, deadline=None)
@given(steps)
def test_components_and_score_always_stay_in_range(plan):
    events = build_events(plan)
    state, outcomes = reducer.replay(events, events[-1].at + timedelta(days=400))
    for change in changes(outcomes):
        assert Decimal(0) <= change.behavioral <= Decimal(100)
        assert Decimal(0) <= change.alignment <= Decimal(100)
        assert change.new_score is None or Decimal(0) <= change.new_score <= Decimal(100)
    assert state.behavioral <= 100
    # 400 quiet days recover any penalty (0 → 100 at half a point a day takes 200).
    assert state.behavioral == 100
