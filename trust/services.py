"""Every write of the trust app (SPEC §5.5), around the pure reducer (``trust.reducer``).

* ``recompute_trust(agent_id, cause_event_id)``: apply every event of the agent that is
  not applied yet, in log order (the ``recompute_trust`` task, scheduled after commit by
  ``trust.hooks``). Idempotent: the agent's state row is locked and carries the ``seq`` of
  the last applied event, so a replayed or duplicated task finds nothing left to do; the
  unique constraints of ``TrustHistory`` are the database's backstop.
* ``advance_trust_clock(now)``: the periodic pass (recovery, upgrades, velocity at day
  boundaries), which also picks up events whose task was lost.
* ``recalculate_trust(agent, by, reason)``: an admin's "Recalculate" — the agent's trust
  recomputed from the event log from scratch, recorded as ``manual_recalculation``.
* ``rebuild_trust(...)``: the same for every agent (``manage.py rebuild_trust``).
* ``acknowledge_alert(alert, by, note)``.

Each change writes its ``TrustHistory`` row and its events (``trust.changed``,
``tier.changed``, ``alert.raised``) in the transaction that changes the state; a worse tier
and a velocity alert open a re-authorization review (``approvals.services.open_review``)
in it too. Cached numbers on ``console.Agent`` are updated in the same transaction, so the
authorization pipeline reads a worse effective tier as soon as it is committed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from audit.models import EventLogEntry
from audit.services import integrate_pending, log_size, record
from console import hints
from console.errors import Conflict, Invalid, NotFound
from console.models import Agent

from . import reducer, selectors
from .models import Alert, TrustCursor, TrustHistory, TrustState

log = logging.getLogger("warden.trust")

REBUILD_ACTOR = "system:rebuild_trust"
# Event types whose task, if lost, the periodic pass re-runs (those the hook schedules).
HOOK_TYPES = (
    "assessment.completed",
    "action.evaluated",
    "action.completed",
    "approval.decided",
    "approval.expired",
    *sorted(reducer.SESSION_END_TYPES),
)
LOST_SCAN_BATCH = 100_000  # log entries scanned per periodic pass


def _user_actor(user) -> str:
    return f"user:{user.get_username()}"


def _as_uuid(value) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound("No such agent.", code="agent_not_found") from exc


# --- state rows -----------------------------------------------------------------------
def _locked_state(agent_id: uuid.UUID) -> TrustState:
    """The agent's state row, created if missing, locked until the transaction ends."""
    row = TrustState.objects.select_for_update().filter(agent_id=agent_id).first()
    if row is None:
        try:
            with transaction.atomic():
                TrustState.objects.create(agent_id=agent_id)
        except IntegrityError:
            pass  # created by a concurrent task: lock that one
        row = TrustState.objects.select_for_update().get(agent_id=agent_id)
    return row


def _store(row: TrustState, state: reducer.State) -> None:
    row.data = state.to_json()
    row.last_seq = state.last_seq
    row.clock = state.clock
    row.save(update_fields=["data", "last_seq", "clock", "updated_at"])


def _cache_on_agent(agent: Agent, state: reducer.State) -> None:
    """The numbers the rest of Warden reads (``Agent.behavioral`` … ``effective_tier``).

    Risk-dependent numbers are written only once the log holds an assessment: an agent
    given a risk tier some other way keeps it.
    """
    values = {"behavioral": state.behavioral, "alignment": state.alignment}
    if state.trust_score is not None:
        values.update(
            trust_score=state.trust_score,
            trust_tier=state.trust_tier,
            effective_tier=state.effective_tier,
        )
    if all(getattr(agent, name) == value for name, value in values.items()):
        return
    Agent.objects.filter(pk=agent.pk).update(**values)
    for name, value in values.items():
        setattr(agent, name, value)
    hints.agent_changed_on_commit(agent.id)


# --- writing outcomes -----------------------------------------------------------------
def _change_payload(change: reducer.Change) -> dict:
    return {
        "previous_score": change.previous_score,
        "new_score": change.new_score,
        "previous_tier": change.previous_tier,
        "new_tier": change.new_tier,
        "previous_effective_tier": change.previous_effective_tier,
        "new_effective_tier": change.new_effective_tier,
        "risk_profile_delta": change.risk_profile_delta,
        "behavioral_delta": change.behavioral_delta,
        "alignment_delta": change.alignment_delta,
        "change_type": change.change_type,
        "cause_event_id": change.cause_event_id,
        "effective_at": change.at,
    }


def _history_row(agent: Agent, change: reducer.Change, *, event_id) -> TrustHistory:
    row = TrustHistory(
        agent=agent,
        previous_score=change.previous_score,
        new_score=change.new_score,
        previous_tier=change.previous_tier,
        new_tier=change.new_tier,
        previous_effective_tier=change.previous_effective_tier,
        new_effective_tier=change.new_effective_tier,
        risk_profile_score=change.risk_profile_score,
        behavioral=change.behavioral,
        alignment=change.alignment,
        risk_profile_delta=change.risk_profile_delta,
        behavioral_delta=change.behavioral_delta,
        alignment_delta=change.alignment_delta,
        change_type=change.change_type,
        change_reason=change.reason,
        evaluated_by=change.evaluated_by,
        cause_event_id=_as_uuid(change.cause_event_id) if change.cause_event_id else None,
        event_id=_as_uuid(event_id),
        effective_at=change.at,
    )
    row.save()
    return row


def _record_tier_change(agent: Agent, change: reducer.Change, *, actor: str) -> None:
    record(
        "tier.changed",
        actor=actor,
        agent_id=agent.id,
        reason=change.reason,
        payload={
            "from": change.previous_tier,
            "to": change.new_tier,
            "trust_score": change.new_score,
            "effective_tier": change.new_effective_tier,
        },
    )


def _write_change(agent: Agent, change: reducer.Change) -> TrustHistory:
    event = record(
        "trust.changed",
        actor=change.evaluated_by,
        agent_id=agent.id,
        reason=change.reason,
        payload=_change_payload(change),
    )
    row = _history_row(agent, change, event_id=event.id)
    if change.tier_changed:
        _record_tier_change(agent, change, actor=change.evaluated_by)
    return row


def _raise_alert(agent: Agent, alert: reducer.Alert, *, actor: str) -> Alert | None:
    """Record ``alert.raised``, keep the alert, and open a re-authorization review."""
    if agent.status == Agent.Status.REVOKED:
        log.info("no %s alert for revoked agent %s", alert.kind, agent.id)
        return None
    event = record(
        "alert.raised",
        actor=actor,
        agent_id=agent.id,
        reason=alert.message,
        payload={
            "kind": alert.kind,
            "message": alert.message,
            "cause_event_id": alert.cause_event_id,
            "trust_score": alert.trust_score,
            "previous_tier": alert.previous_tier,
            "new_tier": alert.new_tier,
        },
    )
    row = Alert.objects.create(
        agent=agent,
        kind=alert.kind,
        message=alert.message,
        cause_event_id=alert.cause_event_id,
        event_id=event.id,
        trust_score=alert.trust_score,
        previous_tier=alert.previous_tier,
        new_tier=alert.new_tier,
        effective_at=alert.at,
    )
    from approvals.services import open_review

    try:
        # A savepoint: a failing review must not roll back (and so block, task after task)
        # the trust change itself; the alert above still shows on the dashboard.
        with transaction.atomic():
            open_review(
                agent,
                cause_event_id=alert.cause_event_id or event.id,
                kind=alert.kind,
                reason=alert.message,
                previous_tier=alert.previous_tier,
                new_tier=alert.new_tier,
            )
    except Exception:
        log.exception("opening the %s review of agent %s failed", alert.kind, agent.id)
    hints.agent_changed_on_commit(agent.id, kind="alert")
    return row


def _write_outcomes(agent: Agent, outcomes: Iterable[reducer.Outcome]) -> int:
    written = 0
    actor = reducer.EVALUATED_BY_EVENT
    for outcome in outcomes:
        if isinstance(outcome, reducer.Change):
            _write_change(agent, outcome)
            actor = outcome.evaluated_by
            written += 1
        else:
            kind_actor = reducer.EVALUATED_BY_CLOCK if outcome.cause_event_id is None else actor
            _raise_alert(agent, outcome, actor=kind_actor)
    return written


# --- the incremental path -------------------------------------------------------------
def _ensure_integrated(cause_event_id) -> None:
    """The reducer reads integrated events only; integrate now if the cause is not yet."""
    if cause_event_id is None:
        return
    if not EventLogEntry.objects.filter(event__id=cause_event_id).exists():
        integrate_pending(wait=True)


def _apply_pending(row: TrustState, state: reducer.State) -> tuple[int, list[reducer.Outcome]]:
    """Apply the agent's events after its watermark to ``state`` (in place)."""
    events = selectors.trust_events(row.agent_id, after_seq=state.last_seq)
    if not events:
        return 0, []
    before = state.copy()
    outcomes: list[reducer.Outcome] = []
    for event in events:
        outcomes.extend(reducer.apply(state, event))
    if before.clock is not None:
        evaluated = reducer.day_floor(before.clock)
        late = [event for event in events if event.at < evaluated]
        if late:
            corrected = _recompute_after_late(row, before, state, late)
            if corrected is not None:
                outcomes = corrected
    return len(events), outcomes


def _recompute_after_late(
    row: TrustState, before: reducer.State, state: reducer.State, late: list[reducer.Event]
) -> list[reducer.Outcome] | None:
    """An event stamped before a day boundary this agent has already evaluated was
    committed late (its transaction outlived ``reducer.SETTLE``). Placing it at the clock,
    as the reducer does, may differ from a replay of the log, which evaluates that
    boundary after it. Recompute from the log so the two never disagree; a correction
    row says why if the numbers moved."""
    fresh, _ = reducer.replay(selectors.trust_events(row.agent_id), before.clock)
    if fresh == state:
        return None  # the same either way: keep the reducer's own records
    log.warning(
        "trust of %s: %d event(s) committed after their day boundary; recomputed from the log",
        row.agent_id,
        len(late),
    )
    outcomes = _correction_outcomes(
        before,
        fresh,
        at=fresh.clock or before.clock,
        actor=reducer.EVALUATED_BY_EVENT,
        cause=late[0].id,
        reason=(
            f"event {late[0].id[:8]} was committed after the day boundary it precedes; "
            "trust recomputed from the event log"
        ),
    )
    for name in (item.name for item in dataclasses.fields(reducer.State)):
        setattr(state, name, getattr(fresh, name))
    return outcomes


def recompute_trust(
    agent_id, cause_event_id=None, *, before_commit: Callable[[], None] | None = None
) -> int:
    """Apply the agent's events not applied yet, in log order; returns how many.

    ``before_commit`` (tests only) runs inside the transaction after the writes.
    """
    agent_uuid = _as_uuid(agent_id)
    agent = Agent.objects.filter(pk=agent_uuid).first()
    if agent is None:
        log.warning("recompute_trust: no agent %s", agent_id)
        return 0
    _ensure_integrated(cause_event_id)
    with transaction.atomic():
        row = _locked_state(agent_uuid)
        state = row.load()
        count, outcomes = _apply_pending(row, state)
        if count:
            _write_outcomes(agent, outcomes)
            _store(row, state)
            _cache_on_agent(agent, state)
        if before_commit is not None:
            before_commit()
    return count


def advance_agent(agent_id, until: datetime) -> int:
    """Bring one agent up to ``until``: pending events, then the day boundaries."""
    agent_uuid = _as_uuid(agent_id)
    with transaction.atomic():
        agent = Agent.objects.filter(pk=agent_uuid).first()
        if agent is None:
            return 0
        row = _locked_state(agent_uuid)
        state = row.load()
        before = state.to_json()
        count, outcomes = _apply_pending(row, state)
        outcomes.extend(reducer.advance(state, until))
        if state.to_json() != before:
            written = _write_outcomes(agent, outcomes)
            _store(row, state)
            _cache_on_agent(agent, state)
            return written
    return 0


def _recompute_lost(limit: int = LOST_SCAN_BATCH) -> int:
    """Re-run the recompute of agents with trust events the cursor has not scanned yet
    (a task lost between commit and the broker is caught here, within one pass)."""
    cursor = TrustCursor.objects.get_or_create(id=1)[0].last_seq
    head = min(log_size(), cursor + limit)
    if head <= cursor:
        return 0
    agents = selectors.agents_with_events_after(cursor, head, HOOK_TYPES)
    for agent_id in sorted(agents):
        recompute_trust(agent_id)
    TrustCursor.objects.filter(id=1, last_seq__lt=head).update(last_seq=head)
    return len(agents)


def advance_trust_clock(now: datetime | None = None) -> dict:
    """The periodic pass (SPEC §5.5): recovery, upgrades and velocity for every agent
    whose clock is behind the due day boundary, after integrating the log."""
    now = now or timezone.now()
    integrate_pending(wait=True)
    caught_up = _recompute_lost()
    due = reducer.due_boundary(now)
    behind = list(
        TrustState.objects.filter(clock__lt=due)
        .order_by("agent_id")
        .values_list("agent_id", flat=True)
    )
    changes = 0
    for agent_id in behind:
        try:
            changes += advance_agent(agent_id, due)
        except Exception:  # one agent's failure must not stop the fleet's pass
            log.exception("advancing the trust clock of %s failed", agent_id)
    return {"due": due, "agents": len(behind), "changes": changes, "caught_up": caught_up}


# --- recomputation from the log -------------------------------------------------------
def _correction_outcomes(
    before: reducer.State,
    after: reducer.State,
    *,
    at: datetime,
    actor: str,
    cause: str | None,
    reason: str,
) -> list[reducer.Outcome]:
    """A recomputation's change (and its alert when the tier got worse), as outcomes."""
    if _numbers(before) == _numbers(after):
        return []
    change = _correction(before, after, at=at, actor=actor, reason=reason, cause=cause)
    return [change, _worse_tier_alert(change)] if change.tier_worsened else [change]


def _worse_tier_alert(change: reducer.Change) -> reducer.Alert:
    return reducer.Alert(
        kind="tier_worsened",
        at=change.at,
        cause_event_id=change.cause_event_id,
        message=(
            f"Trust tier worsened from {change.previous_tier} to {change.new_tier} "
            f"(score {change.new_score}): {change.reason}"
        ),
        previous_tier=change.previous_tier,
        new_tier=change.new_tier,
        trust_score=change.new_score,
    )


def _correction(
    before: reducer.State,
    after: reducer.State,
    *,
    at: datetime,
    actor: str,
    reason: str,
    cause: str | None = None,
) -> reducer.Change:
    return reducer.Change(
        change_type=TrustHistory.ChangeType.MANUAL_RECALCULATION,
        at=at,
        cause_event_id=cause,
        reason=reason,
        evaluated_by=actor,
        previous_score=before.trust_score,
        new_score=after.trust_score,
        previous_tier=before.trust_tier,
        new_tier=after.trust_tier,
        previous_effective_tier=before.effective_tier,
        new_effective_tier=after.effective_tier,
        risk_profile_score=after.risk_profile_score,
        behavioral=after.behavioral,
        alignment=after.alignment,
        risk_profile_delta=(after.risk_profile_score or 0) - (before.risk_profile_score or 0),
        behavioral_delta=after.behavioral - before.behavioral,
        alignment_delta=after.alignment - before.alignment,
    )


def _numbers(state: reducer.State) -> tuple:
    return (
        state.risk_profile_score,
        state.behavioral,
        state.alignment,
        state.trust_score,
        state.trust_tier,
        state.effective_tier,
    )


def _from_scratch(agent_id, until: datetime) -> reducer.State:
    state, _ = reducer.replay(selectors.trust_events(agent_id), until)
    return state


def _cached_state(agent: Agent) -> reducer.State:
    """What the rest of Warden currently believes (for an agent without a state row)."""
    return reducer.State(
        behavioral=agent.behavioral,
        alignment=agent.alignment,
        risk_profile_score=agent.risk_profile_score,
        trust_score=agent.trust_score,
        trust_tier=agent.trust_tier,
        effective_tier=agent.effective_tier,
    )


def _apply_correction(
    agent: Agent,
    row: TrustState,
    before: reducer.State,
    after: reducer.State,
    *,
    actor: str,
    reason: str,
    cause_event_id,
    event_id=None,
    always: bool = False,
) -> TrustHistory | None:
    """Make ``after`` the agent's state; a history row explains any change of numbers."""
    history = None
    if always or _numbers(before) != _numbers(after):
        change = _correction(
            before, after, at=timezone.now(), actor=actor, reason=reason, cause=str(cause_event_id)
        )
        if event_id is None:
            event_id = record(
                "trust.changed",
                actor=actor,
                agent_id=agent.id,
                reason=reason,
                payload=_change_payload(change),
            ).id
        history = _history_row(agent, change, event_id=event_id)
        if change.tier_changed:
            _record_tier_change(agent, change, actor=actor)
        if change.tier_worsened:
            _raise_alert(agent, _worse_tier_alert(change), actor=actor)
    _store(row, after)
    _cache_on_agent(agent, after)
    return history


def recalculate_trust(agent: Agent, *, by, reason: str = "") -> TrustHistory:
    """An admin's Recalculate: the agent's trust from the event log, from scratch.

    The stored state is first brought up to date (pending events, due day boundaries);
    then the agent's whole history is replayed and the result becomes the current state.
    Always writes a ``manual_recalculation`` row (zero deltas when the two agree) and a
    ``trust.recalculated`` event naming who asked and what came out.
    """
    reason = (reason or "").strip() or "manual recalculation"
    if len(reason) > 2000:
        raise Invalid("The reason is too long.", fields={"reason": ["At most 2000 characters."]})
    agent = Agent.objects.filter(pk=agent.pk).first()
    if agent is None:
        raise NotFound("No such agent.", code="agent_not_found")
    integrate_pending(wait=True)
    due = reducer.due_boundary(timezone.now())
    actor = _user_actor(by)
    with transaction.atomic():
        row = _locked_state(agent.pk)
        state = row.load()
        _, outcomes = _apply_pending(row, state)
        outcomes.extend(reducer.advance(state, due))
        _write_outcomes(agent, outcomes)
        events = selectors.trust_events(agent.pk)
        if not events:
            raise Conflict(
                "This agent has no trust events to recalculate from.", code="no_trust_events"
            )
        fresh, _ = reducer.replay(events, max(due, state.clock) if state.clock else due)
        matched = fresh == state
        event = record(
            "trust.recalculated",
            actor=actor,
            agent_id=agent.id,
            reason=reason,
            payload={
                "previous_score": state.trust_score,
                "new_score": fresh.trust_score,
                "previous_tier": state.trust_tier,
                "new_tier": fresh.trust_tier,
                "behavioral": fresh.behavioral,
                "alignment": fresh.alignment,
                "matched": matched,
            },
        )
        if not matched:
            log.warning("trust of %s differed from its recomputation; corrected", agent.id)
        history = _apply_correction(
            agent,
            row,
            state,
            fresh,
            actor=actor,
            reason=(
                f"{reason}: recomputed from the event log"
                + ("; matched the incremental result" if matched else "; corrected")
            ),
            cause_event_id=event.id,
            event_id=event.id,
            always=True,
        )
    assert history is not None
    return history


@dataclass
class RebuildReport:
    agents: int = 0
    events: int = 0
    compute_seconds: float = 0.0
    write_seconds: float = 0.0
    unchanged: int = 0
    caught_up: int = 0
    initialized: int = 0
    corrected: int = 0
    corrected_agents: list[str] = field(default_factory=list)
    event_id: str | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.compute_seconds if self.compute_seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "agents": self.agents,
            "events": self.events,
            "compute_seconds": round(self.compute_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "events_per_second": round(self.events_per_second),
            "unchanged": self.unchanged,
            "caught_up": self.caught_up,
            "initialized": self.initialized,
            "corrected": self.corrected,
        }


REBUILD_CHUNK = 500


def _replay_shard(
    ids: list[str] | None, shard: tuple[int, int] | None
) -> tuple[dict[str, reducer.State], int]:
    """Every agent's state from scratch (of one shard of the agents, or all of them)."""
    states: dict[str, reducer.State] = {}
    apply = reducer.apply
    count = 0
    stream = selectors.stream_trust_events(ids, shard=shard)
    try:
        for agent_id, event in stream:
            state = states.get(agent_id)
            if state is None:
                state = states[agent_id] = reducer.State()
            apply(state, event)
            count += 1
    finally:
        stream.close()  # the server-side cursor and its transaction end here, even on error
    return states, count


_INHERITED_POOLS: list = []


def _forget_inherited_pools() -> None:
    """In a forked worker: never touch the parent's pooled connections (their sockets are
    shared with the parent). Keep them referenced, so that no finaliser ever closes them
    from here (the worker leaves with ``os._exit``), and let the worker open its own."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    _INHERITED_POOLS.append(dict(DatabaseWrapper._connection_pools))
    DatabaseWrapper._connection_pools.clear()
    for conn in connections.all(initialized_only=True):
        conn.connection = None  # the inherited socket belongs to the parent


def _replay_worker(job: tuple[list[str] | None, int, int]) -> tuple[dict[str, reducer.State], int]:
    ids, index, workers = job
    try:
        return _replay_shard(ids, (index, workers))
    finally:
        connections.close_all()


def _replay_in_parallel(
    ids: list[str] | None, workers: int
) -> tuple[dict[str, reducer.State], int]:
    """Replay shards of the agents in ``workers`` forked processes (agents are independent;
    each shard keeps log order). Committed data only: never inside a transaction."""
    import multiprocessing

    connections.close_all()  # children open their own connections
    states: dict[str, reducer.State] = {}
    count = 0
    with multiprocessing.get_context("fork").Pool(
        workers, initializer=_forget_inherited_pools
    ) as pool:
        jobs = [(ids, index, workers) for index in range(workers)]
        for part, events in pool.imap_unordered(_replay_worker, jobs):
            states.update(part)
            count += events
    return states, count


def rebuild_trust(
    *,
    agent_ids: Iterable | None = None,
    now: datetime | None = None,
    write: bool = True,
    workers: int = 1,
) -> RebuildReport:
    """Recompute every agent's trust from the event log from scratch (SPEC §5.5).

    Each result is compared with the incrementally maintained state: equal → nothing to
    do; stored state behind (a pending event or day boundary) → brought up to date the
    incremental way, then compared again; otherwise the recomputed state replaces it with
    a ``manual_recalculation`` row (``system:rebuild_trust``). With ``write=False`` nothing
    is written (the report says what would change). ``workers > 1`` replays shards of the
    agents in that many processes (PostgreSQL, outside a transaction).
    """
    now = now or timezone.now()
    report = RebuildReport()
    ids = [str(_as_uuid(agent_id)) for agent_id in agent_ids] if agent_ids is not None else None
    integrate_pending(wait=True)
    due = reducer.due_boundary(now)

    started = time.perf_counter()
    if workers > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        states, count = _replay_in_parallel(ids, workers)
    else:
        states, count = _replay_shard(ids, None)
    scope = TrustState.objects.all() if ids is None else TrustState.objects.filter(agent_id__in=ids)
    clocks = {str(agent_id): clock for agent_id, clock in scope.values_list("agent_id", "clock")}
    targets: dict[str, datetime] = {}
    for agent_id, state in states.items():
        clock = clocks.get(agent_id)
        until = targets[agent_id] = max(due, clock) if clock else due
        reducer.advance(state, until)
    report.events = count
    report.agents = len(states)
    report.compute_seconds = time.perf_counter() - started

    started = time.perf_counter()
    stored = {
        str(row.agent_id): row
        for row in scope.only("agent_id", "last_seq", "clock", "data")
        if str(row.agent_id) in states
    }
    to_write: list[str] = []
    for agent_id, state in states.items():
        row = stored.get(agent_id)
        if row is None:
            to_write.append(agent_id)
            continue
        current = row.load()
        if current == state:
            report.unchanged += 1
            continue
        if current.last_seq < state.last_seq or (current.clock or now) < (state.clock or now):
            # Behind (an event or a boundary not applied yet): the incremental way first.
            report.caught_up += 1
            if write:
                advance_agent(agent_id, targets[agent_id])
                current = TrustState.objects.get(agent_id=agent_id).load()
            else:
                for event in selectors.trust_events(agent_id, after_seq=current.last_seq):
                    reducer.apply(current, event)
                reducer.advance(current, targets[agent_id])
            if current == state:
                continue
        to_write.append(agent_id)
    if write and to_write:
        report.event_id = _write_rebuild(states, to_write, report, stored, due)
    else:
        report.initialized = sum(1 for agent_id in to_write if agent_id not in stored)
        report.corrected = len(to_write) - report.initialized
        report.corrected_agents = [a for a in to_write if a in stored]
    report.write_seconds = time.perf_counter() - started
    return report


def _write_rebuild(
    states: dict[str, reducer.State],
    agent_ids: list[str],
    report: RebuildReport,
    stored: dict[str, TrustState],
    due: datetime,
) -> str:
    with transaction.atomic():
        summary = record(
            "trust.rebuilt",
            actor=REBUILD_ACTOR,
            reason="trust recomputed from the event log",
            payload={
                "agents": report.agents,
                "events": report.events,
                "to_write": len(agent_ids),
                "missing_state": sum(1 for agent_id in agent_ids if agent_id not in stored),
            },
        )
    for start in range(0, len(agent_ids), REBUILD_CHUNK):
        chunk = agent_ids[start : start + REBUILD_CHUNK]
        with transaction.atomic():
            agents = Agent.objects.in_bulk([uuid.UUID(agent_id) for agent_id in chunk])
            missing = [a for a in chunk if a not in stored]
            TrustState.objects.bulk_create(
                [TrustState(agent_id=uuid.UUID(a)) for a in missing], ignore_conflicts=True
            )
            rows = {
                str(row.agent_id): row
                for row in TrustState.objects.select_for_update().filter(
                    agent_id__in=[uuid.UUID(a) for a in chunk]
                )
            }
            for agent_id in chunk:
                agent = agents.get(uuid.UUID(agent_id))
                if agent is None:
                    continue
                row = rows[agent_id]
                fresh = states[agent_id]
                seen = stored.get(agent_id)
                if row.data and (seen is None or row.last_seq != seen.last_seq):
                    # Moved on since it was compared: recompute this one alone, now.
                    fresh = _from_scratch(agent.pk, max(due, row.clock or due))
                if not row.data:
                    before = _cached_state(agent)
                    report.initialized += 1
                    reason = "trust initialised from the event log by rebuild_trust"
                else:
                    before = row.load()
                    if before == fresh:
                        continue
                    report.corrected += 1
                    report.corrected_agents.append(agent_id)
                    log.warning("rebuild_trust corrected the trust of %s", agent_id)
                    reason = "trust recomputed from the event log by rebuild_trust: corrected"
                _apply_correction(
                    agent,
                    row,
                    before,
                    fresh,
                    actor=REBUILD_ACTOR,
                    reason=reason,
                    cause_event_id=summary.id,
                )
    return str(summary.id)


# --- alerts ---------------------------------------------------------------------------
def acknowledge_alert(alert: Alert, *, by, note: str = "") -> Alert:
    """Mark an open alert as seen (once: a second acknowledgement gets 409)."""
    note = (note or "").strip()
    if len(note) > 2000:
        raise Invalid("The note is too long.", fields={"note": ["At most 2000 characters."]})
    with transaction.atomic():
        updated = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=by, acknowledge_note=note
        )
        if not updated:
            raise Conflict("This alert is already acknowledged.", code="alert_acknowledged")
        record(
            "alert.acknowledged",
            actor=_user_actor(by),
            agent_id=alert.agent_id,
            reason=note or "acknowledged",
            payload={"alert_id": alert.id, "kind": alert.kind},
        )
    hints.agent_changed_on_commit(alert.agent_id, kind="alert")
    return Alert.objects.get(pk=alert.pk)
