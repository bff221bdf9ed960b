"""Trust arithmetic as pure functions (SPEC §5.1, §5.4); no Django import.

Numbers are ``Decimal`` end to end so the same inputs always give the same two-decimal
result; rounding is half-up (``ROUND_HALF_UP``), as in ``assessments.scoring``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

WEIGHT_RISK_PROFILE = Decimal("0.40")
WEIGHT_BEHAVIORAL = Decimal("0.35")
WEIGHT_ALIGNMENT = Decimal("0.25")

# SPEC §5.4: the lowest trust score of trust tiers 1, 2 and 3; below the last is tier 4.
TRUST_TIER_THRESHOLDS = ((1, Decimal("90")), (2, Decimal("75")), (3, Decimal("50")))

_CENT = Decimal("0.01")
_ZERO = Decimal("0")
_HUNDRED = Decimal("100")


def _component(name: str, value: Decimal | int | str) -> Decimal:
    if isinstance(value, float | bool):
        # A float would carry binary noise into a number that must be reproducible.
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite() or not _ZERO <= number <= _HUNDRED:
        raise ValueError(f"{name} must be between 0 and 100, got {value!r}")
    return number


def trust_score(
    risk_profile_score: Decimal | int | str,
    behavioral: Decimal | int | str,
    alignment: Decimal | int | str,
) -> Decimal:
    """SPEC §5.1: ``0.40·risk_profile + 0.35·behavioral + 0.25·alignment``, 2 decimals."""
    total = (
        WEIGHT_RISK_PROFILE * _component("risk_profile_score", risk_profile_score)
        + WEIGHT_BEHAVIORAL * _component("behavioral", behavioral)
        + WEIGHT_ALIGNMENT * _component("alignment", alignment)
    )
    return total.quantize(_CENT, rounding=ROUND_HALF_UP)


def trust_tier(score: Decimal | int | str) -> int:
    """SPEC §5.4: 1 if score ≥ 90, 2 if ≥ 75, 3 if ≥ 50, else 4."""
    value = _component("score", score)
    for tier, threshold in TRUST_TIER_THRESHOLDS:
        if value >= threshold:
            return tier
    return 4


def effective_tier(risk_tier: int, trust_tier: int) -> int:
    """SPEC §5.4: the stricter (higher-numbered) of the risk tier and the trust tier."""
    for name, tier in (("risk_tier", risk_tier), ("trust_tier", trust_tier)):
        if isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= 4:
            raise ValueError(f"{name} must be an integer 1-4, got {tier!r}")
    return max(risk_tier, trust_tier)
