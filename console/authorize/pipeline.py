"""Running the layers of SPEC §3.2 in order and combining their findings.

Every layer runs (budgets first), so the event shows each layer's result and every shadow
verdict; precedence (``verdicts.combine``) makes an earlier HALT final. Guardrails feed
their redacted arguments to the layers after them: policies see the arguments the agent
will be told to use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import history
from .context import UNCHANGED, Context, GuardrailHit
from .layers import PIPELINE
from .verdicts import Finding, Outcome, combine


@dataclass
class Evaluation:
    outcome: Outcome
    findings: list[Finding]
    args: Any
    constrained: bool
    in_scope: bool
    hits: list[GuardrailHit] = field(default_factory=list)


def run(ctx: Context, layers=PIPELINE, *, extra: list[Finding] | None = None) -> Evaluation:
    # The history every layer will read, in one statement (a layer's optional ``reads``).
    history.prefetch(ctx, [read for layer in layers for read in _reads(layer, ctx)])
    findings: list[Finding] = list(extra or [])
    hits: list[GuardrailHit] = []
    in_scope = True
    constrained = False
    for layer in layers:
        result = layer.evaluate(ctx)
        findings.extend(result.findings)
        hits.extend(result.hits)
        if result.args is not UNCHANGED:
            ctx.args = result.args
            ctx._input = None
            constrained = True
        if result.in_scope is False:
            in_scope = False
    return Evaluation(combine(findings), findings, ctx.args, constrained, in_scope, hits)


def _reads(layer, ctx: Context) -> list[tuple]:
    reads = getattr(layer, "reads", None)
    return reads(ctx) if reads is not None else []
