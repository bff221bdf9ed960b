"""Rego policies (SPEC §3.2 step 5), evaluated in-process from cached compiled modules.

Each applicable policy (for this agent or for all, mode enforce or shadow) is evaluated
with the SPEC §3.3 input document. An evaluation error — a run-time error, an undefined or
unknown ``verdict`` — is a verdict too: BLOCK with source ``policy:<name>`` and the error
as reason, unless the agent's ``fail_mode`` is ``open``: then ALLOW, with a reason that
starts ``fail-open:`` so the event shows it. With ``OPA_URL`` set, policies are evaluated
by that OPA server instead (``console.authorize.opa``), under the same rules.
"""

from __future__ import annotations

from django.conf import settings

from .. import history, rego
from ..context import Context, LayerResult
from ..verdicts import ENFORCE, SHADOW, Finding, Verdict

NAME = "policies"


def evaluate_policy(policy, document: dict, *, module: str | None = None) -> rego.PolicyResult:
    """One policy's result for ``document``; ``module`` evaluates a draft source instead."""
    if settings.OPA_URL and module is None:
        from .. import opa

        return opa.evaluate(policy, document)
    try:
        if module is None:
            compiled = rego.compiled(policy.id, policy.version, policy.module)
        else:
            compiled = rego.compiled(f"draft:{policy.id}", 0, module)
    except rego.PolicyCompileError as exc:
        return rego.PolicyResult(None, error=f"the module does not compile: {exc}")
    return rego.evaluate(compiled, document)


def finding_for(policy, result: rego.PolicyResult, *, fail_mode: str, mode: str) -> Finding:
    if result.ok:
        assert result.verdict is not None
        reason = result.reason or f"{policy.source} answered {result.verdict.lower()}"
        return Finding(NAME, policy.source, result.verdict, reason, mode, result.severity)
    if fail_mode == "open":
        return Finding(
            NAME, policy.source, Verdict.ALLOW, f"fail-open: evaluation error: {result.error}", mode
        )
    return Finding(
        NAME, policy.source, Verdict.BLOCK, f"evaluation error: {result.error}", mode, "major"
    )


def reads(ctx: Context) -> list[tuple]:
    """The policy input's ``history`` (fetched ahead by the pipeline)."""
    return history.last_day_reads(ctx.now) if ctx.config.policies else []


def evaluate(ctx: Context) -> LayerResult:
    findings = []
    for policy in ctx.config.policies:
        mode = SHADOW if policy.mode == "shadow" else ENFORCE
        result = evaluate_policy(policy, ctx.policy_input())
        findings.append(finding_for(policy, result, fail_mode=ctx.agent.fail_mode, mode=mode))
    return LayerResult(NAME, findings)
