"""SPEC §5.1–§5.4 trust arithmetic, as pure functions: unit and property tests."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust import scoring
from trust.scoring import (
    applied_trust_tier,
    approval_penalty,
    effective_tier,
    overall_alignment,
    penalize,
    recover,
    session_alignment,
    trust_score,
    trust_tier,
    upgraded_tier,
    velocity_decline,
    violation_penalty,
)

components = st.decimals(min_value=0, max_value=100, places=2)
halves = st.integers(min_value=0, max_value=200).map(lambda n: Decimal(n) / 2)
severities = st.sampled_from(["minor", "major", "critical"])


def test_trust_score_weights_the_three_components():
    # 0.40·34.73 + 0.35·100 + 0.25·100 = 73.892 (the procurement agent, SPEC §5.1)
    assert trust_score(Decimal("34.73"), 100, 100) == Decimal("73.89")
    assert trust_score("50", "40", "20") == Decimal("39.00")
    assert trust_score(0, 0, 0) == Decimal("0.00")
    assert trust_score(100, 100, 100) == Decimal("100.00")


def test_trust_score_rounds_half_up_to_two_decimals():
    # 0.25 · 0.1 = 0.025 exactly: half-up gives 0.03 (half-even would give 0.02).
    assert trust_score("0", "0", "0.1") == Decimal("0.03")
    assert trust_score("0", "0", "0.1").as_tuple().exponent == -2


def test_trust_score_refuses_floats_and_out_of_range_components():
    with pytest.raises(TypeError):
        trust_score(34.73, 100, 100)
    with pytest.raises(ValueError, match="behavioral"):
        trust_score(50, 101, 100)
    with pytest.raises(ValueError, match="alignment"):
        trust_score(50, 100, -1)
    with pytest.raises(ValueError):
        trust_score("NaN", 100, 100)


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        ("100", 1),
        ("90", 1),
        ("89.99", 2),
        ("75", 2),
        ("74.99", 3),
        ("50", 3),
        ("49.99", 4),
        ("0", 4),
    ],
)
def test_trust_tier_thresholds(score, tier):
    assert trust_tier(Decimal(score)) == tier


@pytest.mark.parametrize(
    ("risk", "trust", "expected"), [(1, 1, 1), (3, 1, 3), (1, 4, 4), (2, 3, 3), (4, 4, 4)]
)
def test_effective_tier_is_the_stricter_tier(risk, trust, expected):
    assert effective_tier(risk, trust) == expected


@pytest.mark.parametrize(("risk", "trust"), [(0, 1), (1, 5), (None, 2), (True, 2), ("2", 2)])
def test_effective_tier_refuses_non_tiers(risk, trust):
    with pytest.raises(ValueError):
        effective_tier(risk, trust)


@given(components, components, components)
def test_trust_score_stays_within_0_and_100(risk_profile, behavioral, alignment):
    score = trust_score(risk_profile, behavioral, alignment)
    assert Decimal(0) <= score <= Decimal(100)
    assert trust_tier(score) in (1, 2, 3, 4)


@given(components, components, components, components)
def test_trust_score_never_falls_when_a_component_rises(a, b, c, bump):
    base = trust_score(a, b, c)
    assert trust_score(min(a + bump, Decimal(100)), b, c) >= base
    assert trust_score(a, min(b + bump, Decimal(100)), c) >= base
    assert trust_score(a, b, min(c + bump, Decimal(100))) >= base


@pytest.mark.parametrize("module", ["trust.scoring", "trust.reducer", "trust.chart"])
def test_pure_modules_have_no_django_import(module):
    code = (
        f"import sys, {module}; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- §5.2 behavioural ------------------------------------------------------------------
@pytest.mark.parametrize(("severity", "points"), [("minor", 5), ("major", 15), ("critical", 25)])
def test_violation_penalties(severity, points):
    assert violation_penalty(severity) == points
    assert penalize(100, violation_penalty(severity)) == Decimal(100 - points)


@pytest.mark.parametrize(("outcome", "points"), [("rejected", 2), ("expired", 1), ("approved", 0)])
def test_approval_outcome_penalties(outcome, points):
    assert approval_penalty(outcome) == points


def test_unknown_severities_and_outcomes_are_refused():
    with pytest.raises(ValueError):
        violation_penalty("catastrophic")
    with pytest.raises(ValueError):
        approval_penalty("cancelled")
    with pytest.raises(ValueError):
        penalize(50, -5)


def test_penalties_clamp_at_zero():
    assert penalize(10, 25) == Decimal("0.00")
    assert penalize(0, 5) == Decimal("0.00")
    assert penalize("12.5", 15) == Decimal("0")


def test_recovery_is_one_a_day_below_tier_4_and_half_at_tier_4():
    assert recover(70, 1) == recover(70, 2) == recover(70, 3) == Decimal("71")
    assert recover(70, None) == Decimal("71")  # not assessed yet: the tier 1–3 rate
    assert recover(70, 4) == Decimal("70.5")


def test_recovery_never_exceeds_100():
    assert recover("99.5", 1) == Decimal("100")
    assert recover(100, 4) == Decimal("100")


@given(halves, st.lists(severities, max_size=12))
def test_penalties_never_go_below_zero(start, hits):
    value = start
    for severity in hits:
        value = penalize(value, violation_penalty(severity))
        assert Decimal(0) <= value <= Decimal(100)
    assert value == max(Decimal(0), start - sum(violation_penalty(s) for s in hits))


@given(halves, st.integers(min_value=1, max_value=4), st.integers(min_value=0, max_value=250))
def test_recovery_never_exceeds_100_property(start, tier, days):
    value = start
    for _ in range(days):
        previous = value
        value = recover(value, tier)
        assert previous <= value <= Decimal(100)
    step = Decimal("0.5") if tier == 4 else Decimal(1)
    assert value == min(Decimal(100), start + step * days)


# --- §5.3 alignment ---------------------------------------------------------------------
def test_session_alignment():
    assert session_alignment(12, 14) == Decimal("85.71")
    assert session_alignment(1, 3) == Decimal("33.33")
    assert session_alignment(2, 3) == Decimal("66.67")  # half-up
    assert session_alignment(5, 5) == Decimal("100.00")
    assert session_alignment(0, 0) == Decimal("0.00")  # SPEC's max(1, actions)
    with pytest.raises(ValueError):
        session_alignment(3, 2)


def test_decay_weights_are_095_to_the_k():
    assert scoring.DECAY_WEIGHTS[0] == 1
    assert scoring.DECAY_WEIGHTS[1] == Decimal("0.95")
    assert scoring.DECAY_WEIGHTS[2] == Decimal("0.9025")
    with localcontext() as ctx:
        ctx.prec = 60
        assert scoring.DECAY_WEIGHTS[19] == Decimal("0.95") ** 19  # exact: 39 digits
    assert len(scoring.DECAY_WEIGHTS) == 20


def test_overall_alignment_weighs_recent_sessions_more():
    assert overall_alignment([]) == Decimal("100.00")
    # newest first: (1·0 + 0.95·100) / 1.95 = 48.72
    assert overall_alignment([Decimal(0), Decimal(100)]) == Decimal("48.72")
    assert overall_alignment([Decimal(100), Decimal(0)]) == Decimal("51.28")
    # (1·50 + 0.95·100 + 0.9025·80) / 2.8525 = 76.14
    assert overall_alignment([Decimal(50), Decimal(100), Decimal(80)]) == Decimal("76.14")


def test_overall_alignment_uses_the_last_20_sessions_only():
    twenty = [Decimal(100)] * 20
    assert overall_alignment(twenty + [Decimal(0)] * 5) == Decimal("100.00")


@given(st.lists(components, min_size=1, max_size=25))
def test_overall_alignment_is_a_weighted_mean(sessions):
    value = overall_alignment(sessions)
    recent = sessions[:20]
    assert min(recent) - Decimal("0.01") <= value <= max(recent) + Decimal("0.01")
    weights = scoring.DECAY_WEIGHTS[: len(recent)]
    expected = sum(w * a for w, a in zip(weights, recent, strict=True)) / sum(weights)
    assert abs(value - expected) <= Decimal("0.005")


# --- §5.4 tiers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("previous", "score", "applied"),
    [
        (None, "95", 1),  # first assessment: the score's own tier
        (3, "49.99", 4),  # worse: at once
        (2, "74.99", 3),
        (3, "95", 3),  # better: waits
        (4, "50", 4),
        (2, "80", 2),
    ],
)
def test_applied_trust_tier(previous, score, applied):
    assert applied_trust_tier(previous, Decimal(score)) == applied


def test_upgrade_waits_7_full_days_at_or_above_the_threshold():
    since = datetime(2031, 1, 1, 12, tzinfo=UTC)
    above = [None, since, since]  # ≥ 75 and ≥ 50 since noon on Jan 1
    assert upgraded_tier(3, above, since + timedelta(days=7, seconds=-1)) is None
    assert upgraded_tier(3, above, since + timedelta(days=7)) == 2
    assert upgraded_tier(2, above, since + timedelta(days=30)) is None  # not above 90
    assert upgraded_tier(4, [since, since, since], since + timedelta(days=8)) == 1  # best wins


@given(components)
def test_tier_of_a_score_is_monotonic(score):
    tier = trust_tier(score)
    assert tier == (1 if score >= 90 else 2 if score >= 75 else 3 if score >= 50 else 4)


def test_velocity_needs_more_than_5_points_in_each_window():
    assert velocity_decline([Decimal("90"), Decimal("84.99"), Decimal("79.98"), Decimal("74.97")])
    assert not velocity_decline([Decimal("90"), Decimal("85"), Decimal("79.99"), Decimal("74")])
    assert not velocity_decline([Decimal("90"), Decimal("70"), Decimal("69"), Decimal("50")])
    assert not velocity_decline([Decimal("50"), Decimal("60"), Decimal("70"), Decimal("80")])
    with pytest.raises(ValueError):
        velocity_decline([Decimal(1), Decimal(2)])


@given(st.lists(components, min_size=4, max_size=4))
def test_velocity_is_exactly_three_declines_over_5(points):
    expected = all(a - b > 5 for a, b in zip(points, points[1:], strict=False))
    assert velocity_decline(points) == expected
