"""SPEC §5.1 trust score and §5.4 tiers, as pure functions."""

import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.scoring import effective_tier, trust_score, trust_tier

components = st.decimals(min_value=0, max_value=100, places=2)


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


def test_module_has_no_django_import():
    code = (
        "import sys, trust.scoring; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
