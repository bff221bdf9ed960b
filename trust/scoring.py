"""Trust arithmetic as pure functions (SPEC §5.1–§5.4); no Django import.

Numbers are ``Decimal`` end to end so the same inputs always give the same two-decimal
result; rounding is half-up (``ROUND_HALF_UP``), as in ``assessments.scoring``.

* §5.1 ``trust_score`` weighs the three components.
* §5.2 the behavioural component: ``penalize`` (violations minor −5, major −15,
  critical −25; approval outcomes rejected −2, expired −1, approved 0) and ``recover``
  (+1 a day for effective tiers 1–3, +0.5 for tier 4), both clamped to [0, 100].
* §5.3 the alignment component: ``session_alignment`` for one ended session and
  ``overall_alignment``, the 0.95^k-weighted mean of the last 20 ended sessions.
* §5.4 tiers: ``trust_tier`` (the tier a score is in), ``applied_trust_tier`` (a worse tier
  applies at once, a better one waits), ``upgraded_tier`` (a better tier once the score has
  stayed at or above its threshold for 7 consecutive days), ``effective_tier`` and
  ``velocity_decline`` (more than 5 points lost in each of 3 consecutive 7-day windows).

When these steps are evaluated in time (day boundaries, waiting periods) is the reducer's
business: see ``trust.reducer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

WEIGHT_RISK_PROFILE = Decimal("0.40")
WEIGHT_BEHAVIORAL = Decimal("0.35")
WEIGHT_ALIGNMENT = Decimal("0.25")

# SPEC §5.4: the lowest trust score of trust tiers 1, 2 and 3; below the last is tier 4.
TRUST_TIER_THRESHOLDS = ((1, Decimal("90")), (2, Decimal("75")), (3, Decimal("50")))
THRESHOLD_OF_TIER = dict(TRUST_TIER_THRESHOLDS)

# SPEC §5.2
VIOLATION_PENALTIES = {"minor": Decimal("5"), "major": Decimal("15"), "critical": Decimal("25")}
APPROVAL_PENALTIES = {"rejected": Decimal("2"), "expired": Decimal("1"), "approved": Decimal("0")}
RECOVERY_WAIT_DAYS = 7  # full days without a violation before recovery starts
RECOVERY_PER_DAY = Decimal("1")  # effective tiers 1–3 (and agents not assessed yet)
RECOVERY_PER_DAY_TIER_4 = Decimal("0.5")

# SPEC §5.3
ALIGNMENT_SESSIONS = 20
ALIGNMENT_DECAY = Decimal("0.95")

# SPEC §5.4
UPGRADE_WAIT = timedelta(days=7)
VELOCITY_WINDOW_DAYS = 7
VELOCITY_WINDOWS = 3
VELOCITY_DROP = Decimal("5")  # a decline of *more than* this in each window

_CENT = Decimal("0.01")
_ZERO = Decimal("0")
_HUNDRED = Decimal("100")

# 0.95^k for k = 0 … 19, computed once with ample precision so every caller uses the very
# same weights whatever the ambient decimal context is.
with localcontext() as _ctx:
    _ctx.prec = 40
    DECAY_WEIGHTS: tuple[Decimal, ...] = tuple(
        ALIGNMENT_DECAY**k for k in range(ALIGNMENT_SESSIONS)
    )


def _component(name: str, value: Decimal | int | str) -> Decimal:
    if isinstance(value, float | bool):
        # A float would carry binary noise into a number that must be reproducible.
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite() or not _ZERO <= number <= _HUNDRED:
        raise ValueError(f"{name} must be between 0 and 100, got {value!r}")
    return number


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def clamp(value: Decimal | int | str) -> Decimal:
    """A component value kept within [0, 100], two decimals."""
    if isinstance(value, float | bool):
        raise TypeError(f"value must be a Decimal, int or str, not {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"value must be finite, got {value!r}")
    return _cents(min(max(number, _ZERO), _HUNDRED))


# --- §5.1 -----------------------------------------------------------------------------
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
    return _cents(total)


def weighted_score(risk_profile_score: Decimal, behavioral: Decimal, alignment: Decimal) -> Decimal:
    """``trust_score`` without the input checks, for components already known to be valid
    Decimals in [0, 100] (the reducer's own state); same result."""
    return (
        WEIGHT_RISK_PROFILE * risk_profile_score
        + WEIGHT_BEHAVIORAL * behavioral
        + WEIGHT_ALIGNMENT * alignment
    ).quantize(_CENT, rounding=ROUND_HALF_UP)


# --- §5.2 -----------------------------------------------------------------------------
def violation_penalty(severity: str) -> Decimal:
    """Points an enforced violation of ``severity`` (minor/major/critical) costs."""
    try:
        return VIOLATION_PENALTIES[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}") from None


def approval_penalty(outcome: str) -> Decimal:
    """Points an approval outcome (approved/rejected/expired) costs."""
    try:
        return APPROVAL_PENALTIES[outcome]
    except KeyError:
        raise ValueError(f"unknown approval outcome {outcome!r}") from None


def penalize(behavioral: Decimal | int | str, penalty: Decimal | int | str) -> Decimal:
    """The behavioural component after a penalty, never below 0."""
    points = Decimal(penalty)
    if points < 0:
        raise ValueError("a penalty cannot be negative")
    return clamp(_component("behavioral", behavioral) - points)


def recovery_per_day(effective_tier: int | None) -> Decimal:
    """SPEC §5.2: +1 a day for effective tiers 1–3, +0.5 for tier 4."""
    return RECOVERY_PER_DAY_TIER_4 if effective_tier == 4 else RECOVERY_PER_DAY


def recover(behavioral: Decimal | int | str, effective_tier: int | None) -> Decimal:
    """The behavioural component after one recovery day, never above 100."""
    return clamp(_component("behavioral", behavioral) + recovery_per_day(effective_tier))


# --- §5.3 -----------------------------------------------------------------------------
def session_alignment(aligned: int, actions: int) -> Decimal:
    """SPEC §5.3: ``100 · aligned / max(1, actions)``, 2 decimals.

    ``aligned`` counts the session's actions that were in scope and not BLOCKed or HALTed.
    """
    if isinstance(aligned, bool) or isinstance(actions, bool):
        raise TypeError("counts must be integers")
    if not 0 <= aligned <= actions:
        raise ValueError(f"aligned ({aligned}) must be between 0 and actions ({actions})")
    return _cents(_HUNDRED * aligned / max(1, actions))


def overall_alignment(sessions: Sequence[Decimal]) -> Decimal:
    """SPEC §5.3: weighted mean of the last 20 session alignments, newest first.

    The k-th most recent session (k = 0 newest) weighs ``0.95^k``; with no ended session
    the component is 100 (a new agent).
    """
    recent = list(sessions)[:ALIGNMENT_SESSIONS]
    if not recent:
        return _HUNDRED.quantize(_CENT)
    with localcontext() as ctx:
        ctx.prec = 40
        weights = DECAY_WEIGHTS[: len(recent)]
        total = sum(
            (w * _component("session alignment", a) for w, a in zip(weights, recent, strict=True)),
            _ZERO,
        )
        mean = total / sum(weights, _ZERO)
    return _cents(mean)


# --- §5.4 -----------------------------------------------------------------------------
def trust_tier(score: Decimal | int | str) -> int:
    """SPEC §5.4: 1 if score ≥ 90, 2 if ≥ 75, 3 if ≥ 50, else 4."""
    value = _component("score", score)
    for tier, threshold in TRUST_TIER_THRESHOLDS:
        if value >= threshold:
            return tier
    return 4


def applied_trust_tier(previous_tier: int | None, score: Decimal | int | str) -> int:
    """The trust tier that applies right after the score became ``score``.

    A worse tier applies at once; a better one does not (it waits for ``upgraded_tier``),
    so the previous tier stays. Without a previous tier (first assessment) the score's own
    tier applies.
    """
    computed = trust_tier(score)
    if previous_tier is None or computed > previous_tier:
        return computed
    return previous_tier


def upgraded_tier(
    applied_tier: int, above_since: Sequence[datetime | None], at: datetime
) -> int | None:
    """The better tier that applies at ``at``, or ``None``.

    ``above_since[t - 1]`` is when the score last rose to (and has stayed at or above) the
    threshold of tier ``t`` (1–3), ``None`` while it is below. A tier better than
    ``applied_tier`` applies once its ``since + 7 days <= at``; the best such tier wins.
    """
    for tier in range(1, applied_tier):
        since = above_since[tier - 1]
        if since is not None and since + UPGRADE_WAIT <= at:
            return tier
    return None


def effective_tier(risk_tier: int, trust_tier: int) -> int:
    """SPEC §5.4: the stricter (higher-numbered) of the risk tier and the trust tier."""
    for name, tier in (("risk_tier", risk_tier), ("trust_tier", trust_tier)):
        if isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= 4:
            raise ValueError(f"{name} must be an integer 1-4, got {tier!r}")
    return max(risk_tier, trust_tier)


def velocity_decline(scores: Sequence[Decimal]) -> bool:
    """SPEC §5.4 velocity: ``scores`` are the trust score at 4 points 7 days apart, oldest
    first; True when it fell by more than 5 points in each of the 3 windows between them."""
    if len(scores) != VELOCITY_WINDOWS + 1:
        raise ValueError(f"need {VELOCITY_WINDOWS + 1} scores, got {len(scores)}")
    first, second, third, fourth = scores
    return (
        first - second > VELOCITY_DROP
        and second - third > VELOCITY_DROP
        and third - fourth > VELOCITY_DROP
    )
