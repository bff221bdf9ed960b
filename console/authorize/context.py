"""What every layer sees (:class:`Context`) and what it answers (:class:`LayerResult`).

A layer is a module with ``NAME`` and ``evaluate(ctx) -> LayerResult`` (DESIGN.md): it
reads the proposal, the agent, the session and the applicable configuration from the
context, and answers with findings (``console.authorize.verdicts.Finding``) and, for the
guardrails, the transformed arguments and the hits to record. ``Context.history()`` and
``Context.policy_input()`` are computed once, on first use, and shared by the layers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from audit.timefmt import format_timestamp

from .verdicts import Finding

UNCHANGED: Any = object()
COMMITTED_VERDICTS = ("ALLOW", "REQUIRE_APPROVAL")  # actions that may run: they spend


@dataclass
class Proposal:
    name: str
    target: str = ""
    args: Any = None  # as the agent sent them
    amount: Decimal | None = None
    currency: str = ""
    sensitive: bool = False
    parent_action_id: uuid.UUID | None = None
    depth: int = 1
    args_sha256: str = ""


@dataclass
class Config:
    """The policies, rules and guardrails that apply to one agent, in evaluation order."""

    policies: list = field(default_factory=list)
    rules: list = field(default_factory=list)
    guardrails: list = field(default_factory=list)


@dataclass
class GuardrailHit:
    guardrail: Any
    stage: str
    findings: list[str]
    shadow: bool


@dataclass
class LayerResult:
    layer: str
    findings: list[Finding]
    args: Any = UNCHANGED  # the arguments later layers (and the agent) must use
    in_scope: bool | None = None
    hits: list[GuardrailHit] = field(default_factory=list)


@dataclass
class Context:
    agent: Any  # console.models.Agent, read under its row lock
    session: Any  # console.models.AgentSession, locked
    proposal: Proposal
    now: dt.datetime
    config: Config
    args: Any = None  # current arguments (redacted by enforced guardrails)
    # Backtests evaluate a recorded action: leave it out of its own history.
    exclude_action_id: uuid.UUID | None = None
    _history: dict[str, Any] | None = None
    # History reads answered ahead of the layers (``history.prefetch``), by read.
    reads: dict[tuple, tuple] = field(default_factory=dict)
    _input: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.args is None:
            self.args = self.proposal.args

    @property
    def effective_tier(self) -> int | None:
        return self.agent.effective_tier or self.agent.risk_tier

    def actions(self):
        """This agent's recorded actions up to now (the rules' and budgets' base query)."""
        from .models import Action

        if self.exclude_action_id is not None:
            # A backtest replays a recorded action: only what happened strictly before it.
            return Action.objects.filter(agent_id=self.agent.id, created_at__lt=self.now).exclude(
                pk=self.exclude_action_id
            )
        return Action.objects.filter(agent_id=self.agent.id, created_at__lte=self.now)

    def history(self) -> dict[str, Any]:
        """SPEC §3.3 ``history``: one aggregate query over the last day of this agent."""
        if self._history is None:
            from . import history

            self._history = history.last_day(self)
        return self._history

    def policy_input(self) -> dict[str, Any]:
        """The input document of SPEC §3.3 (amounts as JSON numbers)."""
        if self._input is None:
            agent, session, proposal = self.agent, self.session, self.proposal
            history = self.history()
            self._input = {
                "agent": {
                    "id": str(agent.id),
                    "name": agent.name,
                    "status": agent.status,
                    "risk_tier": agent.risk_tier,
                    "trust_tier": agent.trust_tier,
                    "effective_tier": self.effective_tier,
                    "trust_score": number(agent.trust_score),
                    "scope": agent.scope,
                },
                "session": {
                    "id": str(session.id),
                    "workflow_id": session.workflow_id,
                    "action_count": session.action_count,
                    "spend_total": number(session.spend_total),
                    "started_at": format_timestamp(session.started_at),
                },
                "action": {
                    "name": proposal.name,
                    "target": proposal.target,
                    "args": self.args,
                    "amount": number(proposal.amount),
                    "currency": proposal.currency,
                    "sensitive": proposal.sensitive,
                    "parent_action_id": str(proposal.parent_action_id)
                    if proposal.parent_action_id
                    else None,
                },
                "history": {
                    "actions_last_hour": history["actions_last_hour"],
                    "actions_last_day": history["actions_last_day"],
                    "spend_last_day": number(history["spend_last_day"]),
                },
                "now": format_timestamp(self.now),
            }
        return self._input


def number(value: Decimal | float | int | None) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
