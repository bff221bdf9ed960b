"""Guardrails on the input (SPEC §3.2 step 3) and on reported output (SPEC §9 result).

Guardrails run in a fixed order — canaries, payload size, PII, banned words — then by name.
What a finding does depends on the guardrail's ``mode``:

* ``redact``: the arguments are rewritten (``[REDACTED:email]``); the verdict stays ALLOW
  and the answer says ``constrained: true`` with the arguments to use;
* ``block``: BLOCK with the guardrail's severity (default major);
* ``log``: ALLOW; the hit is recorded (``guardrail.hit``).

A **canary** token anywhere in the arguments, the target or an output always HALTs
(critical) when the guardrail is enforced, whatever its mode. ``payload_size`` measures the
canonical JSON of the arguments as sent and supports ``block`` and ``log``. A guardrail in
``shadow`` enforcement reports what it would have done (``shadow_verdicts``) and changes
nothing; canaries and payload size read the arguments as sent, PII and banned words the
arguments as redacted by the enforced guardrails before them.
"""

from __future__ import annotations

from typing import Any

from audit import canonical

from .. import canary, detectors
from ..context import UNCHANGED, Context, GuardrailHit, LayerResult
from ..verdicts import ENFORCE, SHADOW, Finding, Verdict

NAME = "guardrails"
_ORDER = {"canary": 0, "payload_size": 1, "pii": 2, "banned_words": 3}


def ordered(guardrails: list) -> list:
    return sorted(guardrails, key=lambda g: (_ORDER.get(g.kind, 9), g.name))


def _mode(guardrail) -> str:
    return SHADOW if guardrail.enforcement == "shadow" else ENFORCE


def payload_bytes(value: Any) -> int:
    if value is None:
        return 0
    try:
        return len(canonical.dumps(value))
    except (TypeError, ValueError):
        return len(repr(value).encode())


def _detector(guardrail):
    config = guardrail.config or {}
    if guardrail.kind == "pii":
        kinds = tuple(config.get("detect") or detectors.PII_KINDS)
        return (lambda text: detectors.find_pii(text, kinds)), "secret" in kinds
    regex = detectors.banned_words_regex(
        config.get("words") or (), case_sensitive=bool(config.get("case_sensitive"))
    )
    return (lambda text: detectors.find_banned(text, regex)), False


def run(
    guardrails: list, *, stage: str, document: Any, extra_strings: tuple[str, ...] = ()
) -> tuple[list[Finding], Any, list[GuardrailHit]]:
    """Apply the guardrails of ``stage`` to ``document``.

    Returns the findings, the document as redacted by the enforced ``redact`` guardrails,
    and the hits (one per guardrail that found something).
    """
    findings: list[Finding] = []
    hits: list[GuardrailHit] = []
    current = document
    original_strings: list[str] | None = None
    for guardrail in ordered(guardrails):
        if not guardrail.applies_to(stage) or guardrail.enforcement not in (ENFORCE, SHADOW):
            continue
        mode = _mode(guardrail)
        source = guardrail.source
        where = "arguments" if stage == "input" else "output"
        if guardrail.kind == "canary":
            tokens = canary.tokens_of(guardrail)
            if tokens is None:
                findings.append(
                    Finding(
                        NAME,
                        source,
                        Verdict.ALLOW,
                        "canary tokens unreadable (SECRET_KEY changed?); re-enter them",
                        mode,
                    )
                )
                continue
            if original_strings is None:
                original_strings = [*detectors.strings_of(document), *extra_strings]
            found = any(detectors.find_canaries(text, tokens) for text in original_strings)
            if found:
                hits.append(GuardrailHit(guardrail, stage, ["canary"], mode == SHADOW))
                findings.append(
                    Finding(
                        NAME,
                        source,
                        Verdict.HALT,
                        f"canary token found in the {where}",
                        mode,
                        "critical",
                    )
                )
            else:
                findings.append(Finding(NAME, source, Verdict.ALLOW, "no canary token", mode))
            continue
        if guardrail.kind == "payload_size":
            limit = int((guardrail.config or {}).get("max_bytes") or 0)
            size = payload_bytes(document)
            if limit and size > limit:
                hits.append(GuardrailHit(guardrail, stage, ["payload_size"], mode == SHADOW))
                reason = f"{where} are {size} bytes, more than {limit}"
                if guardrail.mode == "block":
                    findings.append(
                        Finding(NAME, source, Verdict.BLOCK, reason, mode, guardrail.severity)
                    )
                else:
                    findings.append(Finding(NAME, source, Verdict.ALLOW, f"logged: {reason}", mode))
            else:
                findings.append(
                    Finding(NAME, source, Verdict.ALLOW, f"{where} within {limit} bytes", mode)
                )
            continue
        detector, secret_fields = _detector(guardrail)
        redacted, kinds = detectors.scan(current, detector, secret_fields=secret_fields)
        if not kinds:
            findings.append(Finding(NAME, source, Verdict.ALLOW, "nothing found", mode))
            continue
        found_list = sorted(kinds)
        hits.append(GuardrailHit(guardrail, stage, found_list, mode == SHADOW))
        what = ", ".join(found_list)
        if guardrail.mode == "redact":
            findings.append(
                Finding(
                    NAME,
                    source,
                    Verdict.ALLOW,
                    f"redacted {what}",
                    mode,
                    transformed=mode == ENFORCE,
                )
            )
            if mode == ENFORCE:
                current = redacted
        elif guardrail.mode == "block":
            findings.append(
                Finding(
                    NAME,
                    source,
                    Verdict.BLOCK,
                    f"{what} found in the {where}",
                    mode,
                    guardrail.severity,
                )
            )
        else:
            findings.append(Finding(NAME, source, Verdict.ALLOW, f"logged: {what}", mode))
    return findings, current, hits


def evaluate(ctx: Context) -> LayerResult:
    proposal = ctx.proposal
    extra = tuple(s for s in (proposal.target, proposal.name) if s)
    findings, args, hits = run(
        ctx.config.guardrails, stage="input", document=proposal.args, extra_strings=extra
    )
    changed = any(f.transformed for f in findings)
    return LayerResult(NAME, findings, args=args if changed else UNCHANGED, hits=hits)
