"""The layers of SPEC §3.2, one module each, in pipeline order.

Each module has ``NAME`` and ``evaluate(ctx: Context) -> LayerResult``.
"""

from . import budgets, guardrails, policies, rules, scope, tier

PIPELINE = (budgets, guardrails, scope, policies, rules, tier)

__all__ = ["PIPELINE", "budgets", "guardrails", "policies", "rules", "scope", "tier"]
