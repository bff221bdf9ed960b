"""Reads that turn a session's or an agent's events into a story (SPEC §7).

``session_replay`` gives the steps of the replay page; ``incident_report`` the entries and
totals of the incident timeline. Both only read the log (payloads as ``docs/events.md``
describes them), so they show exactly what was recorded: arguments as redacted, every
layer's result, the verdict and the approval with its decision.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db.models import F

from .models import GovernanceEvent

APPROVAL_TYPES = (
    "approval.requested",
    "approval.decided",
    "approval.expired",
    "approval.cancelled",
)
CLOSING = ("session.ended", "session.halted", "session.revoked")
CONTAINMENT = (
    "agent.paused",
    "agent.resumed",
    "agent.revoked",
    "session.halted",
    "session.revoked",
    "key.revoked",
)
TRUST = ("trust.changed", "tier.changed", "alert.raised", "assessment.completed")
MAX_INCIDENT_ROWS = 5000


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def decision_of(payload: dict) -> dict:
    """What the console shows of an ``action.evaluated`` payload (``audit/_decision.html``):
    the action, its arguments as redacted (indented JSON), each layer's finding and the
    shadow verdicts."""
    action = payload.get("action") or {}
    return {
        "action": action,
        "args": _pretty(action.get("args", {})),
        "layers": payload.get("layers") or [],
        "shadow": payload.get("shadow_verdicts") or [],
    }


def _score_text(value) -> str:
    return "–" if value is None else str(value)


def _amount(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass
class Step:
    n: int
    event: GovernanceEvent
    kind: str  # start | action | approval | result | guardrail | end | other
    payload: dict
    action: dict | None = None
    args: str = ""
    layers: list = field(default_factory=list)
    shadow: list = field(default_factory=list)
    approval: dict | None = None  # {id, requested, decisions: [events], outcome}
    completion: dict | None = None
    position: float = 0.0  # 0..1000 along the session's time line (the SVG's width)

    @property
    def seq(self):
        log = getattr(self.event, "log", None) if _integrated(self.event) else None
        return log.seq if log else None

    @property
    def outcome(self) -> str:
        """One word for the marker on the time line."""
        if self.event.verdict:
            return self.event.verdict
        return self.event.result


def _integrated(event: GovernanceEvent) -> bool:
    try:
        event.log  # noqa: B018
    except Exception:  # noqa: BLE001 - EventLogEntry.DoesNotExist
        return False
    return True


def _approvals(events: list[GovernanceEvent], agent_id, since: datetime | None) -> dict:
    """approval_id → {requested, decisions, outcome} from the approval events (those of the
    session, and those recorded for the agent since the session began without a session)."""
    found: dict[str, dict] = defaultdict(
        lambda: {"requested": None, "decisions": [], "outcome": "pending"}
    )
    seen = {e.pk for e in events}
    extra = []
    if agent_id is not None:
        extra = GovernanceEvent.objects.filter(
            agent_id=agent_id, event_type__in=APPROVAL_TYPES, session_id__isnull=True
        )
        if since is not None:
            extra = extra.filter(timestamp__gte=since)
    for event in [*events, *[e for e in extra if e.pk not in seen]]:
        if event.event_type not in APPROVAL_TYPES:
            continue
        approval_id = event.payload.get("approval_id")
        if not approval_id:
            continue
        entry = found[approval_id]
        entry["id"] = approval_id
        if event.event_type == "approval.requested":
            entry["requested"] = event
        else:
            entry["decisions"].append(event)
            entry["outcome"] = event.result
    return dict(found)


# Log order: by seq; events not yet integrated (no seq yet) last, in arrival order. Arrival
# alone is not log order on PostgreSQL: two transactions commit in the other order than
# they inserted.
LOG_ORDER = (F("log__seq").asc(nulls_last=True), "arrival")


def session_replay(session_id: uuid.UUID) -> list[Step]:
    events = list(
        GovernanceEvent.objects.filter(session_id=session_id)
        .select_related("log")
        .order_by(*LOG_ORDER)
    )
    if not events:
        return []
    start, end = events[0].timestamp, events[-1].timestamp
    span = (end - start).total_seconds() or 1.0
    approvals = _approvals(events, events[0].agent_id, start)
    completions = {
        e.payload.get("action_id"): e for e in events if e.event_type == "action.completed"
    }
    steps = []
    for n, event in enumerate(events, 1):
        payload = event.payload
        step = Step(n=n, event=event, kind="other", payload=payload)
        step.position = round(1000 * (event.timestamp - start).total_seconds() / span, 1)
        kind = event.event_type
        if kind == "session.started":
            step.kind = "start"
        elif kind in CLOSING:
            step.kind = "end"
        elif kind == "action.evaluated":
            step.kind = "action"
            decision = decision_of(payload)
            step.action, step.args = decision["action"], decision["args"]
            step.layers, step.shadow = decision["layers"], decision["shadow"]
            if payload.get("approval_id"):
                step.approval = approvals.get(payload["approval_id"]) or {
                    "id": payload["approval_id"],
                    "requested": None,
                    "decisions": [],
                    "outcome": "pending",
                }
            done = completions.get(payload.get("action_id"))
            if done is not None:
                step.completion = {
                    "status": done.payload.get("status"),
                    "output": _pretty(done.payload.get("output")),
                }
        elif kind in APPROVAL_TYPES:
            step.kind = "approval"
        elif kind == "action.completed":
            step.kind = "result"
            step.completion = {
                "status": payload.get("status"),
                "output": _pretty(payload.get("output")),
            }
        elif kind == "guardrail.hit":
            step.kind = "guardrail"
        steps.append(step)
    return steps


# --- incident timeline ----------------------------------------------------------------
@dataclass
class Totals:
    actions: int = 0
    verdicts: Counter = field(default_factory=Counter)
    violations: Counter = field(default_factory=Counter)
    proposed: dict = field(default_factory=lambda: defaultdict(Decimal))
    committed: dict = field(default_factory=lambda: defaultdict(Decimal))
    blocked: dict = field(default_factory=lambda: defaultdict(Decimal))
    approvals_requested: int = 0
    approvals: Counter = field(default_factory=Counter)  # approved / rejected / expired / cancelled
    containment: int = 0
    trust_first: str | None = None
    trust_last: str | None = None
    tier_changes: list = field(default_factory=list)
    sessions: int = 0

    # Templates look keys up before attributes, and a Counter answers 0 for any key: hand
    # them plain lists instead.
    @property
    def verdict_items(self) -> list[tuple[str, int]]:
        return sorted(self.verdicts.items())

    @property
    def violation_items(self) -> list[tuple[str, int]]:
        return sorted(self.violations.items())

    @property
    def violations_total(self) -> int:
        return sum(self.violations.values())

    @property
    def proposed_items(self) -> list[tuple[str, Decimal]]:
        return sorted(self.proposed.items())

    @property
    def committed_items(self) -> list[tuple[str, Decimal]]:
        return sorted(self.committed.items())

    @property
    def blocked_items(self) -> list[tuple[str, Decimal]]:
        return sorted(self.blocked.items())


@dataclass
class Incident:
    entries: list[dict]
    totals: Totals
    sessions: list[dict]
    truncated: bool
    count: int


def _category(event_type: str) -> str:
    if event_type == "action.evaluated":
        return "action"
    if event_type == "action.completed":
        return "result"
    if event_type in APPROVAL_TYPES:
        return "approval"
    if event_type in CONTAINMENT:
        return "containment"
    if event_type in TRUST:
        return "trust"
    if event_type.startswith("session."):
        return "session"
    return "other"


def incident_report(agent_id: uuid.UUID, start: datetime, end: datetime) -> Incident:
    """Every event of the agent in ``[start, end)`` in log order, with totals.

    "Committed" is the amount of actions that ran: ALLOWed, or approved by a person, and
    reported done (``action.completed`` with status ok). Entries past
    ``MAX_INCIDENT_ROWS`` are counted in the totals but not listed (narrow the window or
    export the same filter as CSV).
    """
    events = (
        GovernanceEvent.objects.filter(agent_id=agent_id, timestamp__gte=start, timestamp__lt=end)
        .select_related("log")
        .order_by(*LOG_ORDER)
    )
    totals = Totals()
    entries: list[dict] = []
    amounts: dict[str, tuple[str, Decimal]] = {}  # action_id → (currency, amount)
    approved_actions: set[str] = set()
    allowed_actions: set[str] = set()
    sessions: dict[str, dict] = {}
    count = 0
    for event in events.iterator(chunk_size=2000):
        count += 1
        payload = event.payload
        category = _category(event.event_type)
        if event.session_id:
            info = sessions.setdefault(
                str(event.session_id),
                {
                    "id": str(event.session_id),
                    "first": event.timestamp,
                    "status": "open",
                    "events": 0,
                },
            )
            info["events"] += 1
            info["last"] = event.timestamp
            if event.event_type in CLOSING:
                info["status"] = payload.get("status") or event.event_type.split(".")[1]
        if event.event_type == "action.evaluated":
            totals.actions += 1
            totals.verdicts[event.verdict or "?"] += 1
            violation = payload.get("violation")
            if violation:
                totals.violations[violation.get("severity") or "major"] += 1
            action = payload.get("action") or {}
            amount = _amount(action.get("amount"))
            currency = action.get("currency") or ""
            if amount is not None:
                totals.proposed[currency] += amount
                amounts[payload.get("action_id")] = (currency, amount)
                if event.verdict in ("BLOCK", "HALT"):
                    totals.blocked[currency] += amount
            if event.verdict == "ALLOW":
                allowed_actions.add(payload.get("action_id"))
        elif event.event_type == "approval.requested":
            totals.approvals_requested += 1
        elif event.event_type in APPROVAL_TYPES and event.result in (
            "approved",
            "rejected",
            "expired",
            "cancelled",
        ):
            totals.approvals[event.result] += 1
            if event.result == "approved" and payload.get("action_id"):
                approved_actions.add(payload["action_id"])
        elif event.event_type == "action.completed":
            action_id = payload.get("action_id")
            ran = action_id in allowed_actions or action_id in approved_actions
            if payload.get("status") == "ok" and ran and action_id in amounts:
                currency, amount = amounts[action_id]
                totals.committed[currency] += amount
        elif event.event_type == "trust.changed":
            # A score may be absent (the first change after an assessment has no previous
            # one): shown as a dash, never as "None".
            if totals.trust_first is None:
                totals.trust_first = _score_text(payload.get("previous_score"))
            totals.trust_last = _score_text(payload.get("new_score"))
        elif event.event_type == "tier.changed":
            totals.tier_changes.append((payload.get("from"), payload.get("to")))
        if category == "containment":
            totals.containment += 1
        if len(entries) < MAX_INCIDENT_ROWS:
            entries.append({"event": event, "category": category, "payload": payload})
    totals.sessions = len(sessions)
    return Incident(
        entries=entries,
        totals=totals,
        sessions=sorted(sessions.values(), key=lambda s: s["first"]),
        truncated=count > len(entries),
        count=count,
    )
