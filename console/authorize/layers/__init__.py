"""The layers of SPEC §3.2, one module each, in pipeline order.

Each module has ``NAME`` and ``evaluate(ctx: Context) -> LayerResult``; a layer that reads
the agent's history also has ``reads(ctx)``, the reads (``history.window`` /
``history.seen_target``) it will make, which the pipeline fetches ahead in one statement.
"""

from . import budgets, guardrails, policies, rules, scope, tier

PIPELINE = (budgets, guardrails, scope, policies, rules, tier)

__all__ = ["PIPELINE", "budgets", "guardrails", "policies", "rules", "scope", "tier"]
