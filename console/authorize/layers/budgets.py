"""Budgets / circuit breakers (SPEC §3.2 step 2): hard limits per agent → HALT.

Checked first, under the session's row lock (held by the caller), so concurrent proposals
of one session cannot overspend together. ``max_actions_per_session`` counts every
proposal (tried actions count); the spend budgets count the amounts of actions that may
run (verdict ALLOW or REQUIRE_APPROVAL) — a refused action spends nothing.
``max_spend_per_day`` is a rolling 24 hours across all the agent's sessions.
``max_depth`` counts levels: a top-level action has depth 1, its child depth 2.
"""

from __future__ import annotations

from decimal import Decimal

from .. import history
from ..context import Context, LayerResult
from ..verdicts import Finding, Verdict

NAME = "budgets"


def _money(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def reads(ctx: Context) -> list[tuple]:
    """The rolling day's spend, when a daily budget applies (fetched ahead)."""
    if (ctx.agent.budgets or {}).get("max_spend_per_day") is None or not ctx.proposal.amount:
        return []
    return history.last_day_reads(ctx.now)


def evaluate(ctx: Context) -> LayerResult:
    budgets = ctx.agent.budgets or {}
    session, proposal = ctx.session, ctx.proposal
    amount = proposal.amount or Decimal("0")
    exceeded: list[tuple[str, str]] = []

    limit = budgets.get("max_actions_per_session")
    if limit is not None and session.action_count + 1 > limit:
        exceeded.append(
            (
                "budget:actions_per_session",
                f"action {session.action_count + 1} of at most {limit} in this session",
            )
        )
    limit = _money(budgets.get("max_spend_per_session"))
    if limit is not None and amount and session.spend_total + amount > limit:
        exceeded.append(
            (
                "budget:session_spend",
                f"session spend {session.spend_total + amount:f} would exceed {limit:f}",
            )
        )
    limit = _money(budgets.get("max_spend_per_day"))
    if limit is not None and amount:
        spent = ctx.history()["spend_last_day"]
        if spent + amount > limit:
            exceeded.append(
                ("budget:daily_spend", f"spend in 24 h {spent + amount:f} would exceed {limit:f}")
            )
    limit = budgets.get("max_session_seconds")
    if limit is not None:
        elapsed = (ctx.now - session.started_at).total_seconds()
        if elapsed > limit:
            exceeded.append(
                ("budget:session_seconds", f"session open {int(elapsed)} s, at most {limit} s")
            )
    limit = budgets.get("max_depth")
    if limit is not None and proposal.depth > limit:
        exceeded.append(("budget:depth", f"nesting depth {proposal.depth}, at most {limit}"))

    if not exceeded:
        return LayerResult(NAME, [Finding(NAME, "budgets", Verdict.ALLOW, "within budgets")])
    return LayerResult(
        NAME,
        [
            Finding(NAME, source, Verdict.HALT, reason, severity="critical")
            for source, reason in exceeded
        ],
    )
