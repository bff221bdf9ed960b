"""Tier presets (SPEC §3.2 step 7, §5.4) on the agent's effective tier at request time.

Tier 3: REQUIRE_APPROVAL for sensitive actions (the proposal says ``sensitive: true`` or
its name matches ``scope.sensitive_actions``). Tier 4: REQUIRE_APPROVAL for every action
whose name does not match ``scope.read_only_actions`` (none listed: every action); the
approvals app applies four-eyes. Tiers 1–2 add nothing.
"""

from __future__ import annotations

from ..context import Context, LayerResult
from ..patterns import matches_any
from ..verdicts import Finding, Verdict

NAME = "tier"


def evaluate(ctx: Context) -> LayerResult:
    tier = ctx.effective_tier
    scope = ctx.agent.scope or {}
    name = ctx.proposal.name
    if tier == 3 and (ctx.proposal.sensitive or matches_any(name, scope.get("sensitive_actions"))):
        finding = Finding(
            NAME, "tier", Verdict.REQUIRE_APPROVAL, "sensitive action at effective tier 3"
        )
    elif tier is not None and tier >= 4 and not matches_any(name, scope.get("read_only_actions")):
        finding = Finding(
            NAME,
            "tier",
            Verdict.REQUIRE_APPROVAL,
            f"effective tier 4: {name} is not a read-only action",
        )
    else:
        finding = Finding(NAME, "tier", Verdict.ALLOW, f"effective tier {tier}: no preset")
    return LayerResult(NAME, [finding])
