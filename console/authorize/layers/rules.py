"""Behavioural rules over the agent's whole history (SPEC §3.2 step 6).

Each rule makes one read of the agent's history (``read_for``); the pipeline fetches every
rule's read ahead in one statement, whose cost does not grow with the agent's volume
(``history``: rollup buckets, the ``(agent, target)`` index). Counts and sums include the
action being proposed, and actions that were BLOCKed or HALTed still count (they were
tried). A rule applies when the proposed action's name matches its ``pattern`` (for
``sequence``: its ``then_pattern``).

* ``rate``: more than ``threshold`` matching actions within ``window_seconds`` (the query
  stops counting one past the threshold; the reason then says ``N+``);
* ``cumulative``: the sum of ``amount`` of matching actions within the window (the proposed
  one included, whatever the currency) exceeds ``threshold``;
* ``sequence``: an action matching ``pattern`` happened within the window before this one,
  which matches ``then_pattern``;
* ``first_seen``: the agent never acted on this target before (an earlier action on the
  same target that was ALLOWed or whose result was reported, within the window when one is
  set). An action without a target does not trigger it.

A rule that triggers gives its own verdict and severity; otherwise ALLOW.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Q

from .. import history
from ..context import Context, LayerResult
from ..patterns import is_literal, matches, sql_regex
from ..verdicts import ENFORCE, SHADOW, Finding, Verdict

NAME = "rules"
CENTS = Decimal("0.01")


def name_q(pattern: str) -> Q:
    return Q(name=pattern) if is_literal(pattern) else Q(name__regex=sql_regex(pattern))


def window_text(seconds: int | None) -> str:
    if not seconds:
        return "ever"
    if seconds % 86400 == 0:
        return f"{seconds // 86400 * 24} h" if seconds < 7 * 86400 else f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _since(rule, ctx: Context) -> dt.datetime | None:
    return ctx.now - dt.timedelta(seconds=rule.window_seconds) if rule.window_seconds else None


def read_for(rule, ctx: Context) -> tuple | None:
    """The history read ``check`` makes for ``rule`` (``history.window`` /
    ``history.seen_target``), or None when the rule does not apply to this action."""
    name, since = ctx.proposal.name, _since(rule, ctx)
    if rule.kind == "sequence":
        return history.window(rule.pattern, since) if matches(name, rule.then_pattern) else None
    if not matches(name, rule.pattern):
        return None
    if rule.kind in ("rate", "cumulative"):
        return history.window(rule.pattern, since)
    if rule.kind == "first_seen" and ctx.proposal.target:
        return history.seen_target(ctx.proposal.target, since)
    return None


def reads(ctx: Context) -> list[tuple]:
    """Every rule's read, fetched ahead in one statement by the pipeline."""
    return [read for rule in ctx.config.rules if (read := read_for(rule, ctx)) is not None]


def check(rule, ctx: Context) -> tuple[bool, str] | None:
    """(triggered, reason) for one rule, or None when it does not apply to this action."""
    if read_for(rule, ctx) is None:  # applicability is decided there, once
        return None
    proposal = ctx.proposal
    name = proposal.name
    since = _since(rule, ctx)
    within = window_text(rule.window_seconds)
    if rule.kind == "sequence":
        if history.exists(ctx, pattern=rule.pattern, since=since):
            return True, f"{rule.pattern} then {name} within {within}"
        return False, f"no {rule.pattern} before {name} within {within}"
    if rule.kind == "rate":
        limit = int(rule.threshold or 0)
        # Counting stops one past the threshold: enough to decide, and cheap for busy agents.
        earlier = history.count(ctx, pattern=rule.pattern, since=since, limit=limit + 1)
        count = earlier + 1
        more = "+" if earlier > limit else ""
        text = f"{count}{more} {rule.pattern} within {within} (more than {limit} triggers)"
        return count > limit, text
    if rule.kind == "cumulative":
        total = history.total(ctx, pattern=rule.pattern, since=since) + (
            proposal.amount or Decimal("0")
        )
        limit = (rule.threshold or Decimal("0")).quantize(CENTS)
        total = total.quantize(CENTS)
        return (
            total > limit,
            f"{rule.pattern} amounts {total:f} within {within} (over {limit:f} triggers)",
        )
    # first_seen (read_for admits no other kind)
    if history.exists(ctx, target=proposal.target, since=since, seen=True):
        return False, f"{proposal.target} seen before"
    return True, f"first time this agent acts on {proposal.target}"


def finding(rule, ctx: Context) -> Finding | None:
    checked = check(rule, ctx)
    if checked is None:
        return None
    triggered, reason = checked
    mode = SHADOW if rule.mode == "shadow" else ENFORCE
    if triggered:
        return Finding(NAME, rule.source, Verdict.parse(rule.verdict), reason, mode, rule.severity)
    return Finding(NAME, rule.source, Verdict.ALLOW, reason, mode)


def evaluate(ctx: Context) -> LayerResult:
    findings = []
    for rule in ctx.config.rules:  # already by priority (100 first), then name
        result = finding(rule, ctx)
        if result is not None:
            findings.append(result)
    return LayerResult(NAME, findings)
