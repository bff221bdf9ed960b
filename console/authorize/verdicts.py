"""Verdicts, severities and how layer findings combine (SPEC §3.1, §3.4). No Django.

A *finding* is one voice of one layer (a policy, a rule, a guardrail, the budgets …): a
verdict with its reason, source, mode and severity. ``combine`` picks the outcome by the
precedence **HALT > BLOCK > REQUIRE_APPROVAL > ALLOW** among enforced findings; shadow
findings never change it (SPEC §3.2 "shadow"). Ties between findings with the same verdict
go to the first one in pipeline order (budgets, guardrails, scope, policies, rules, tier;
rules by priority, 100 first), so the reported ``source`` is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    ALLOW = "ALLOW"
    REQUIRE_APPROVAL = "REQUIRE_APPROVAL"
    BLOCK = "BLOCK"
    HALT = "HALT"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: Any) -> Verdict:
        """``allow`` / ``ALLOW`` / ``require_approval`` … → Verdict; ValueError otherwise."""
        if not isinstance(value, str):
            raise ValueError(f"a verdict must be a string, not {type(value).__name__}")
        try:
            return cls(value.strip().upper())
        except ValueError:
            raise ValueError(
                f"unknown verdict {value!r}; expected allow, block, halt or require_approval"
            ) from None


_RANK = {Verdict.ALLOW: 0, Verdict.REQUIRE_APPROVAL: 1, Verdict.BLOCK: 2, Verdict.HALT: 3}

SEVERITIES = ("minor", "major", "critical")
ENFORCE = "enforce"
SHADOW = "shadow"


def default_severity(verdict: Verdict) -> str | None:
    """SPEC §3.4: BLOCK → major, HALT → critical; other verdicts are not violations."""
    if verdict is Verdict.HALT:
        return "critical"
    if verdict is Verdict.BLOCK:
        return "major"
    return None


@dataclass(frozen=True)
class Finding:
    """One layer voice, as recorded in ``action.evaluated`` ``layers`` (docs/events.md)."""

    layer: str  # budgets | guardrails | scope | policies | rules | tier | session
    source: str  # e.g. policy:spend-limit, rule:contract-burst, budget:session_spend
    verdict: Verdict
    reason: str
    mode: str = ENFORCE  # enforce | shadow
    severity: str | None = None
    # An ALLOW that changed the arguments (redaction): it names the outcome's source.
    transformed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "source": self.source,
            "verdict": str(self.verdict),
            "reason": self.reason,
            "mode": self.mode,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reason: str
    source: str
    severity: str | None  # of the deciding finding (violations, approval priority)
    violation: dict[str, str] | None  # {"severity": …} exactly for enforced BLOCK / HALT
    shadow_verdicts: list[dict[str, str]] = field(default_factory=list)


ALLOW_SOURCE = "pipeline"
ALLOW_REASON = "no layer objected"


def combine(findings: list[Finding]) -> Outcome:
    """The final verdict of a list of findings in pipeline order (see module docstring)."""
    winner: Finding | None = None
    for finding in findings:
        if finding.mode != ENFORCE:
            continue
        if winner is None or finding.verdict.rank > winner.verdict.rank:
            winner = finding
    shadow = [
        {"source": f.source, "verdict": str(f.verdict), "reason": f.reason}
        for f in findings
        if f.mode == SHADOW
    ]
    if winner is None or winner.verdict is Verdict.ALLOW:
        # An ALLOW that transformed the arguments names its layer (e.g. guardrail:pii).
        constrained = next(
            (f for f in findings if f.mode == ENFORCE and f.transformed),
            None,
        )
        if constrained is not None:
            return Outcome(
                Verdict.ALLOW, constrained.reason, constrained.source, None, None, shadow
            )
        return Outcome(Verdict.ALLOW, ALLOW_REASON, ALLOW_SOURCE, None, None, shadow)
    severity = winner.severity or default_severity(winner.verdict)
    violation = (
        {"severity": severity or "major"}
        if winner.verdict in (Verdict.BLOCK, Verdict.HALT)
        else None
    )
    return Outcome(winner.verdict, winner.reason, winner.source, severity, violation, shadow)
