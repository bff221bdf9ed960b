"""Scope, the agent's behavioural pact (SPEC §3.2 step 4) → BLOCK (major) when out of it.

``excluded_actions`` wins over ``allowed_actions``; ``allowed_actions`` / ``allowed_targets``
of None mean no restriction. With ``allowed_targets`` set, an action without a target is
out of scope (nothing shows it stays within the allowed targets).
"""

from __future__ import annotations

from ..context import Context, LayerResult
from ..patterns import matches_any
from ..verdicts import Finding, Verdict

NAME = "scope"


def check(scope: dict, name: str, target: str) -> str | None:
    """Why the action is out of scope, or None."""
    scope = scope or {}
    if matches_any(name, scope.get("excluded_actions")):
        return f"{name} is excluded by the agent's scope"
    allowed = scope.get("allowed_actions")
    if allowed is not None and not matches_any(name, allowed):
        return f"{name} is not among the agent's allowed actions"
    targets = scope.get("allowed_targets")
    if targets is not None:
        if not target:
            return f"{name} has no target; the agent's scope restricts targets"
        if not matches_any(target, targets):
            return f"target {target} is not among the agent's allowed targets"
    return None


def evaluate(ctx: Context) -> LayerResult:
    refusal = check(ctx.agent.scope, ctx.proposal.name, ctx.proposal.target)
    if refusal is None:
        return LayerResult(NAME, [Finding(NAME, "scope", Verdict.ALLOW, "in scope")], in_scope=True)
    return LayerResult(
        NAME, [Finding(NAME, "scope", Verdict.BLOCK, refusal, severity="major")], in_scope=False
    )
