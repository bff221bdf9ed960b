"""The trust reducer: one pure step from (state, event) to (new state, change records).

No Django import, no clock, no I/O: the incremental path (``trust.services`` called by the
``recompute_trust`` and ``advance_trust_clock`` tasks) and the rebuild from the event log
(``manage.py rebuild_trust``) both drive *this* code with the same events in the same
order, so they cannot disagree (SPEC §5.5).

Inputs
    ``Event``: one governance event of the agent, in log order (``seq``). The reducer
    reads ``agent.registered`` (the agent's clock starts), ``assessment.completed`` (risk
    profile), ``action.evaluated`` (per-session counts; a ``violation`` is a penalty),
    ``action.completed`` (a canary in the output is a critical violation),
    ``approval.decided`` / ``approval.expired`` of kind ``action`` (approval outcomes) and
    ``session.ended|halted|revoked`` (session alignment). Everything else is ignored.

Outputs
    ``apply(state, event)`` and ``advance(state, until)`` update ``state`` in place (the
    caller owns it) and return the ``Change`` records (one per change of the score, a tier
    or a component: the TrustHistory rows) and ``Alert`` records (``tier_worsened``,
    ``velocity``) the step produced.

Time (how a rebuild gets the same result to the cent)
    * Every event happens at ``max(event.timestamp, state.clock)``: the state's clock
      never goes back, so an event committed late is placed at the latest time already
      evaluated, identically on both paths (both read events in ``seq`` order).
    * Time-based steps run only at **day boundaries**, UTC midnights. Before an event at
      time ``t`` is applied, every boundary ``<= t`` not yet evaluated is evaluated first
      (``advance``). The periodic task evaluates boundaries without an event, up to
      ``due_boundary(now)`` = the last midnight at least ``SETTLE`` (15 min) ago, after
      integrating the log and applying the agent's pending events; so a boundary is only
      evaluated once every event stamped before it is in the log (a transaction open for
      longer than ``SETTLE`` is the one way to break this; it is logged).
    * At a boundary ``D``, in this order:
      1. **Recovery** (SPEC §5.2). Let ``F`` be the midnight that starts the day of the
         last violation (or of the agent's first event if it never had one). Full days
         after it are numbered 1, 2, …; days 1–7 are the waiting period and each later
         violation-free day earns recovery at its end: at ``D >= F + 9 days``, if the
         behavioural component is below 100, it gains +1 (effective tier 1–3) or +0.5
         (effective tier 4, the tier at ``D``), capped at 100.
      2. **Upgrade** (SPEC §5.4). For each trust tier better than the applied one, the
         reducer knows since when the score has stayed at or above its threshold
         (``above_since``, set when the score reaches it, cleared when it drops below).
         At ``D``, the best tier with ``since + 7 days <= D`` applies.
         Recovery and upgrade at one boundary make one ``recovery`` change.
      3. **Velocity** (SPEC §5.4). The score at ``D`` (after 1 and 2) is sampled. With
         the samples at ``D − 21d, D − 14d, D − 7d, D``, a decline of more than 5 points
         in each of the three windows raises a ``velocity`` alert. It fires once per
         episode: it re-arms only after a boundary where the condition is false.
    * A worse trust tier applies at once, at the event that causes it (with a
      ``tier_worsened`` alert); a better one only through step 2.

Choices where SPEC §5 is silent (written down here, used by both paths)
    * A session that ended without a single evaluated action says nothing about
      alignment and is not counted (``COUNT_EMPTY_SESSIONS``): SPEC §5.3's
      ``max(1, actions)`` would otherwise make it 0 %.
    * An action whose *output* carried a canary (``action.completed`` with a violation)
      no longer counts as aligned in its session.
    * A violation of unknown severity counts as major (the BLOCK default of SPEC §3.4).
    * Decisions on re-authorization reviews are not approval outcomes of the agent's
      actions and do not move the behavioural score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from . import scoring

DAY = timedelta(days=1)
SETTLE = timedelta(minutes=15)
# Recovery is earned at boundaries D >= F + 9 days (see the module docstring).
RECOVERY_FROM = (scoring.RECOVERY_WAIT_DAYS + 2) * DAY
# Samples of the score at consecutive boundaries needed by the velocity check.
SAMPLES = scoring.VELOCITY_WINDOWS * scoring.VELOCITY_WINDOW_DAYS + 1
COUNT_EMPTY_SESSIONS = False

EVALUATED_BY_EVENT = "system:recompute_trust"
EVALUATED_BY_CLOCK = "system:advance_trust_clock"

SESSION_END_TYPES = frozenset({"session.ended", "session.halted", "session.revoked"})
CONSUMED_TYPES = frozenset(
    {
        "agent.registered",
        "assessment.completed",
        "action.evaluated",
        "action.completed",
        "approval.decided",
        "approval.expired",
    }
    | SESSION_END_TYPES
)
_DENIED = frozenset({"BLOCK", "HALT"})
_HUNDRED = Decimal("100.00")


# --- time -----------------------------------------------------------------------------
def day_floor(moment: datetime) -> datetime:
    """The UTC midnight that starts ``moment``'s day."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        moment = moment.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def boundary_at_or_after(moment: datetime) -> datetime:
    start = day_floor(moment)
    return start if start == moment else start + DAY


def due_boundary(now: datetime, settle: timedelta = SETTLE) -> datetime:
    """The last day boundary the periodic task may evaluate at ``now``."""
    return day_floor(now - settle)


# --- records --------------------------------------------------------------------------
# Named tuples, not dataclasses: a rebuild makes millions of these (a frozen dataclass
# costs several times more to construct).
NO_PAYLOAD: Mapping[str, Any] = MappingProxyType({})


class Event(NamedTuple):
    """The part of a governance event the reducer reads (``at`` in UTC)."""

    id: str
    seq: int
    type: str
    at: datetime
    session_id: str | None = None
    verdict: str | None = None
    result: str = "success"
    payload: Mapping[str, Any] = NO_PAYLOAD


class Change(NamedTuple):
    """One TrustHistory row (SPEC §5.5)."""

    change_type: str
    at: datetime
    cause_event_id: str | None
    reason: str
    evaluated_by: str
    previous_score: Decimal | None
    new_score: Decimal | None
    previous_tier: int | None
    new_tier: int | None
    previous_effective_tier: int | None
    new_effective_tier: int | None
    risk_profile_score: Decimal | None
    behavioral: Decimal
    alignment: Decimal
    risk_profile_delta: Decimal
    behavioral_delta: Decimal
    alignment_delta: Decimal

    @property
    def tier_changed(self) -> bool:
        return self.previous_tier is not None and self.new_tier != self.previous_tier

    @property
    def tier_worsened(self) -> bool:
        return (
            self.previous_tier is not None
            and self.new_tier is not None
            and self.new_tier > self.previous_tier
        )


class Alert(NamedTuple):
    kind: str  # tier_worsened | velocity
    at: datetime
    cause_event_id: str | None
    message: str
    previous_tier: int | None
    new_tier: int | None
    trust_score: Decimal | None


Outcome = Change | Alert


def _t(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _pt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value is not None else None


def _d(value: Decimal | None) -> str | None:
    return format(value, "f") if value is not None else None


def _pd(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


@dataclass(slots=True)
class State:
    """Everything the reducer remembers about one agent."""

    last_seq: int = 0  # the last event applied (log seq)
    clock: datetime | None = None  # the latest time evaluated (event or boundary)
    risk_profile_score: Decimal | None = None
    risk_tier: int | None = None
    behavioral: Decimal = _HUNDRED
    alignment: Decimal = _HUNDRED
    trust_score: Decimal | None = None
    trust_tier: int | None = None  # the applied trust tier (upgrades wait, §5.4)
    effective_tier: int | None = None
    quiet_since: datetime | None = None  # the last violation (or the first event)
    # Since when the score has stayed at or above the threshold of tiers 1, 2, 3.
    above_since: list[datetime | None] = field(default_factory=lambda: [None, None, None])
    recent_sessions: list[Decimal] = field(default_factory=list)  # newest first, ≤ 20
    open_sessions: dict[str, list[int]] = field(default_factory=dict)  # id → [actions, aligned]
    samples: list[Decimal | None] = field(default_factory=list)  # score at boundaries, ≤ 22
    velocity_armed: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "last_seq": self.last_seq,
            "clock": _t(self.clock),
            "risk_profile_score": _d(self.risk_profile_score),
            "risk_tier": self.risk_tier,
            "behavioral": _d(self.behavioral),
            "alignment": _d(self.alignment),
            "trust_score": _d(self.trust_score),
            "trust_tier": self.trust_tier,
            "effective_tier": self.effective_tier,
            "quiet_since": _t(self.quiet_since),
            "above_since": [_t(value) for value in self.above_since],
            "recent_sessions": [_d(value) for value in self.recent_sessions],
            "open_sessions": {key: list(value) for key, value in self.open_sessions.items()},
            "samples": [_d(value) for value in self.samples],
            "velocity_armed": self.velocity_armed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> State:
        if not data:
            return cls()
        return cls(
            last_seq=int(data["last_seq"]),
            clock=_pt(data["clock"]),
            risk_profile_score=_pd(data["risk_profile_score"]),
            risk_tier=data["risk_tier"],
            behavioral=Decimal(data["behavioral"]),
            alignment=Decimal(data["alignment"]),
            trust_score=_pd(data["trust_score"]),
            trust_tier=data["trust_tier"],
            effective_tier=data["effective_tier"],
            quiet_since=_pt(data["quiet_since"]),
            above_since=[_pt(value) for value in data["above_since"]],
            recent_sessions=[Decimal(value) for value in data["recent_sessions"]],
            open_sessions={key: list(value) for key, value in data["open_sessions"].items()},
            samples=[_pd(value) for value in data["samples"]],
            velocity_armed=bool(data["velocity_armed"]),
        )

    def copy(self) -> State:
        return State.from_json(self.to_json())


# --- the reducer ----------------------------------------------------------------------
def apply(state: State, event: Event, *, fast_forward: bool = True) -> list[Outcome]:
    """Apply one event (in log order) to ``state``; returns the changes and alerts."""
    out: list[Outcome] = []
    if state.clock is None:
        state.clock = event.at
        state.quiet_since = event.at
    else:
        at = event.at if event.at > state.clock else state.clock
        if at.date() != state.clock.date():  # a day boundary lies in (clock, at]
            out.extend(advance(state, at, fast_forward=fast_forward))
        state.clock = at
    if event.seq > state.last_seq:
        state.last_seq = event.seq
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        out.extend(handler(state, event, state.clock))
    return out


def advance(state: State, until: datetime, *, fast_forward: bool = True) -> list[Outcome]:
    """Evaluate every day boundary after the state's clock and ``<= until``.

    ``fast_forward`` skips runs of boundaries where nothing can happen (same result as
    evaluating them one by one; a property test holds the two together).
    """
    out: list[Outcome] = []
    if state.clock is None:
        return out
    boundary = day_floor(state.clock) + DAY
    while boundary <= until:
        if fast_forward:
            last = _last_quiet_boundary(state, boundary, until)
            if last is not None:
                _fill_samples(state, (last - boundary) // DAY + 1)
                state.clock = last
                boundary = last + DAY
                continue
        out.extend(_tick(state, boundary))
        state.clock = boundary
        boundary += DAY
    return out


def replay(
    events: Iterable[Event], until: datetime | None = None, *, fast_forward: bool = True
) -> tuple[State, list[Outcome]]:
    """A state from scratch: every event in order, then the boundaries up to ``until``."""
    state = State()
    out: list[Outcome] = []
    for event in events:
        out.extend(apply(state, event, fast_forward=fast_forward))
    if until is not None:
        out.extend(advance(state, until, fast_forward=fast_forward))
    return state, out


# --- internals ------------------------------------------------------------------------
_Snapshot = tuple


def _snapshot(state: State) -> _Snapshot:
    return (
        state.risk_profile_score,
        state.risk_tier,
        state.behavioral,
        state.alignment,
        state.trust_score,
        state.trust_tier,
        state.effective_tier,
    )


def _rescore(state: State, at: datetime) -> None:
    """Recompute the score and tiers from the components (a worse tier applies at once)."""
    if state.risk_profile_score is None or state.risk_tier is None:
        state.trust_score = state.trust_tier = state.effective_tier = None
        return
    score = scoring.weighted_score(state.risk_profile_score, state.behavioral, state.alignment)
    tier = scoring.applied_trust_tier(state.trust_tier, score)
    state.trust_score = score
    state.trust_tier = tier
    state.effective_tier = max(state.risk_tier, tier)
    above = state.above_since
    for index, (_, threshold) in enumerate(scoring.TRUST_TIER_THRESHOLDS):
        if score >= threshold:
            if above[index] is None:
                above[index] = at
        else:
            above[index] = None


def _emit(
    state: State,
    old: _Snapshot,
    *,
    change_type: str,
    at: datetime,
    cause: str | None,
    reason: str,
    evaluated_by: str,
) -> list[Outcome]:
    new = _snapshot(state)
    if new == old:
        return []
    rps0, _, b0, a0, score0, tier0, eff0 = old
    rps1, _, b1, a1, score1, tier1, eff1 = new
    cause_text = reason
    if tier0 is not None and tier1 is not None and tier1 != tier0:
        direction = "worse, at once" if tier1 > tier0 else "better"
        reason = f"{reason}; trust tier {tier0} → {tier1} ({direction})"
    change = Change(
        change_type=change_type,
        at=at,
        cause_event_id=cause,
        reason=reason,
        evaluated_by=evaluated_by,
        previous_score=score0,
        new_score=score1,
        previous_tier=tier0,
        new_tier=tier1,
        previous_effective_tier=eff0,
        new_effective_tier=eff1,
        risk_profile_score=rps1,
        behavioral=b1,
        alignment=a1,
        risk_profile_delta=(rps1 or 0) - (rps0 or 0) if rps1 is not None else Decimal("0.00"),
        behavioral_delta=b1 - b0,
        alignment_delta=a1 - a0,
    )
    out: list[Outcome] = [change]
    if change.tier_worsened:
        out.append(
            Alert(
                kind="tier_worsened",
                at=at,
                cause_event_id=cause,
                message=(
                    f"Trust tier worsened from {tier0} to {tier1} (score {_d(score1)}): "
                    f"{cause_text}"
                ),
                previous_tier=tier0,
                new_tier=tier1,
                trust_score=score1,
            )
        )
    return out


def _short(value: Any) -> str:
    return str(value)[:8] if value else "?"


def _penalty(
    state: State, event: Event, at: datetime, *, points: Decimal, change_type: str, reason: str
) -> list[Outcome]:
    old = _snapshot(state)
    state.behavioral = scoring.penalize(state.behavioral, points)
    _rescore(state, at)
    return _emit(
        state,
        old,
        change_type=change_type,
        at=at,
        cause=event.id,
        reason=f"{reason}, behavioural −{_d(points)}",
        evaluated_by=EVALUATED_BY_EVENT,
    )


def _severity(violation: Any) -> str:
    severity = violation.get("severity") if isinstance(violation, dict) else None
    return severity if severity in scoring.VIOLATION_PENALTIES else "major"


def _on_assessment(state: State, event: Event, at: datetime) -> list[Outcome]:
    payload = event.payload
    old = _snapshot(state)
    previous_rps, previous_risk_tier = state.risk_profile_score, state.risk_tier
    state.risk_profile_score = Decimal(str(payload["risk_profile_score"]))
    state.risk_tier = int(payload["risk_tier"])
    _rescore(state, at)
    version = payload.get("version")
    if previous_rps is None:
        reason = (
            f"initial assessment (version {version}): risk profile "
            f"{_d(state.risk_profile_score)}, risk tier {state.risk_tier}"
        )
    else:
        reason = (
            f"re-assessment (version {version}): risk profile {_d(previous_rps)} → "
            f"{_d(state.risk_profile_score)}, risk tier {previous_risk_tier} → {state.risk_tier}"
        )
    return _emit(
        state,
        old,
        change_type="reassessment",
        at=at,
        cause=event.id,
        reason=reason,
        evaluated_by=EVALUATED_BY_EVENT,
    )


def _on_action_evaluated(state: State, event: Event, at: datetime) -> list[Outcome]:
    payload = event.payload
    if event.session_id is not None:
        counts = state.open_sessions.get(event.session_id)
        if counts is None:
            counts = state.open_sessions[event.session_id] = [0, 0]
        counts[0] += 1
        if event.verdict not in _DENIED and payload.get("in_scope", True) is not False:
            counts[1] += 1
    violation = payload.get("violation")
    if not violation:
        return []
    severity = _severity(violation)
    action = payload.get("action") or {}
    state.quiet_since = at
    return _penalty(
        state,
        event,
        at,
        points=scoring.violation_penalty(severity),
        change_type="violation",
        reason=(
            f"{event.verdict or 'BLOCK'} of {action.get('name') or 'an action'} by "
            f"{payload.get('source') or 'the pipeline'}: {severity} violation"
        ),
    )


def _on_action_completed(state: State, event: Event, at: datetime) -> list[Outcome]:
    payload = event.payload
    violation = payload.get("violation")
    if not violation:
        return []
    if event.session_id is not None:
        counts = state.open_sessions.get(event.session_id)
        if counts is not None and counts[1] > 0:
            counts[1] -= 1
    severity = _severity(violation)
    state.quiet_since = at
    return _penalty(
        state,
        event,
        at,
        points=scoring.violation_penalty(severity),
        change_type="violation",
        reason=(
            f"output of action {_short(payload.get('action_id'))} refused "
            f"({payload.get('source') or 'guardrail:canary'}): {severity} violation"
        ),
    )


def _on_approval_decided(state: State, event: Event, at: datetime) -> list[Outcome]:
    payload = event.payload
    if payload.get("kind", "action") != "action" or event.result != "rejected":
        return []  # approved costs 0; "pending" is four-eyes' first vote
    return _penalty(
        state,
        event,
        at,
        points=scoring.approval_penalty("rejected"),
        change_type="approval_outcome",
        reason=(
            f"approval {_short(payload.get('approval_id'))} rejected"
            + (f" by {payload['decided_by']}" if payload.get("decided_by") else "")
        ),
    )


def _on_approval_expired(state: State, event: Event, at: datetime) -> list[Outcome]:
    payload = event.payload
    if payload.get("kind", "action") != "action":
        return []
    return _penalty(
        state,
        event,
        at,
        points=scoring.approval_penalty("expired"),
        change_type="approval_outcome",
        reason=f"approval {_short(payload.get('approval_id'))} expired unanswered",
    )


def _on_session_end(state: State, event: Event, at: datetime) -> list[Outcome]:
    counts = state.open_sessions.pop(event.session_id, None) if event.session_id else None
    actions, aligned = counts if counts is not None else (0, 0)
    if actions == 0 and not COUNT_EMPTY_SESSIONS:
        return []
    value = scoring.session_alignment(aligned, actions)
    state.recent_sessions.insert(0, value)
    del state.recent_sessions[scoring.ALIGNMENT_SESSIONS :]
    old = _snapshot(state)
    state.alignment = scoring.overall_alignment(state.recent_sessions)
    _rescore(state, at)
    how = event.type.split(".", 1)[1]
    return _emit(
        state,
        old,
        change_type="alignment",
        at=at,
        cause=event.id,
        reason=(
            f"session {_short(event.session_id)} {how}: {aligned} of {actions} actions in "
            f"scope and allowed ({_d(value)}%); alignment over the last "
            f"{len(state.recent_sessions)} sessions {_d(state.alignment)}"
        ),
        evaluated_by=EVALUATED_BY_EVENT,
    )


_HANDLERS = {
    "assessment.completed": _on_assessment,
    "action.evaluated": _on_action_evaluated,
    "action.completed": _on_action_completed,
    "approval.decided": _on_approval_decided,
    "approval.expired": _on_approval_expired,
    **dict.fromkeys(SESSION_END_TYPES, _on_session_end),
}


def _recovery_due(state: State, boundary: datetime) -> bool:
    return (
        state.behavioral < _HUNDRED
        and state.quiet_since is not None
        and (boundary.date() - state.quiet_since.date()).days >= RECOVERY_FROM.days
    )


def _tick(state: State, boundary: datetime) -> list[Outcome]:
    """Evaluate one day boundary: recovery, upgrade, then the velocity sample."""
    out: list[Outcome] = []
    recovering = _recovery_due(state, boundary)
    # Recovery only raises the score, so it cannot change which upgrade is due.
    better = (
        scoring.upgraded_tier(state.trust_tier, state.above_since, boundary)
        if state.trust_tier is not None and state.trust_tier > 1
        else None
    )
    if recovering or better is not None:
        old = _snapshot(state)
        reasons = []
        if recovering:
            step = scoring.recovery_per_day(state.effective_tier)
            state.behavioral = scoring.recover(state.behavioral, state.effective_tier)
            _rescore(state, boundary)
            days = (boundary.date() - state.quiet_since.date()).days - 1  # type: ignore[union-attr]
            reasons.append(
                f"{days} full days without a violation: behavioural +{_d(step)}"
                + (
                    " (effective tier 4 recovers 0.5 a day)"
                    if step != scoring.RECOVERY_PER_DAY
                    else ""
                )
            )
        if better is not None:
            state.trust_tier = better
            state.effective_tier = max(state.risk_tier or better, better)
            reasons.append(
                f"score at or above {_d(scoring.THRESHOLD_OF_TIER[better])} for "
                f"{scoring.UPGRADE_WAIT.days} consecutive days"
            )
        out.extend(
            _emit(
                state,
                old,
                change_type="recovery",
                at=boundary,
                cause=None,
                reason="; ".join(reasons),
                evaluated_by=EVALUATED_BY_CLOCK,
            )
        )
    samples = state.samples
    samples.append(state.trust_score)
    if len(samples) > SAMPLES:
        del samples[0]
    # A score, once there, never goes back to None: None samples can only be the oldest,
    # so samples[0] tells whether there is any (and avoids comparing Decimals with None).
    if len(samples) == SAMPLES and samples[0] is not None:
        week = scoring.VELOCITY_WINDOW_DAYS
        points = [samples[0], samples[week], samples[2 * week], samples[3 * week]]
        if scoring.velocity_decline(points):  # type: ignore[arg-type]
            if state.velocity_armed:
                state.velocity_armed = False
                trail = " → ".join(_d(point) or "?" for point in points)
                out.append(
                    Alert(
                        kind="velocity",
                        at=boundary,
                        cause_event_id=None,
                        message=(
                            "Trust score fell by more than "
                            f"{_d(scoring.VELOCITY_DROP)} points in each of the last "
                            f"{scoring.VELOCITY_WINDOWS} {scoring.VELOCITY_WINDOW_DAYS}-day "
                            f"windows: {trail}"
                        ),
                        previous_tier=state.trust_tier,
                        new_tier=state.trust_tier,
                        trust_score=state.trust_score,
                    )
                )
        else:
            state.velocity_armed = True
    return out


def _last_quiet_boundary(state: State, first: datetime, until: datetime) -> datetime | None:
    """The last boundary of a run starting at ``first`` in which no boundary can change
    anything but the (constant) velocity samples; ``None`` if ``first`` itself may."""
    samples = state.samples
    score = state.trust_score
    if samples:
        if score is None:
            if samples[-1] is not None:
                return None
        elif samples[0] is None or samples.count(score) != len(samples):
            return None
    limit = day_floor(until)
    if state.behavioral < _HUNDRED and state.quiet_since is not None:
        limit = min(limit, day_floor(state.quiet_since) + RECOVERY_FROM - DAY)
    if state.trust_tier is not None:
        for tier in range(1, state.trust_tier):
            since = state.above_since[tier - 1]
            if since is not None:
                limit = min(limit, boundary_at_or_after(since + scoring.UPGRADE_WAIT) - DAY)
    return limit if limit >= first else None


def _fill_samples(state: State, count: int) -> None:
    score = state.trust_score
    state.samples.extend([score] * min(count, SAMPLES))
    del state.samples[:-SAMPLES]
    if len(state.samples) == SAMPLES and score is not None:
        state.velocity_armed = True  # the condition is false on a flat line
