"""Validation of policy, rule and guardrail definitions (SPEC §9 bodies), shared by the API
and the console pages. Each function returns clean values or raises ``Invalid`` naming
every bad field with its reason."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from console.errors import Invalid

from . import canary, detectors
from .models import MODES, SEVERITIES, Guardrail, Rule
from .patterns import pattern_error

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
MAX_WINDOW_SECONDS = 366 * 24 * 3600
MAX_REQUEST_BYTES = 256 * 1024
UNSET: Any = object()


def _raise(errors: dict[str, list[str]], what: str) -> None:
    if errors:
        raise Invalid(f"The {what} is not valid.", fields=errors)


def name_error(name: Any) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "This field is required."
    if not NAME_RE.match(name.strip()):
        return "Up to 100 letters, digits, '-', '_', '.' or ':', starting with a letter or digit."
    return None


def _choice(errors, key, value, choices) -> None:
    if value not in choices:
        errors[key] = [f"One of {', '.join(choices)}."]


def policy_fields(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """name, description, module, mode (compile errors are checked by the service)."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    if "name" in data or not partial:
        problem = name_error(data.get("name"))
        if problem:
            errors["name"] = [problem]
        else:
            clean["name"] = data["name"].strip()
    if "module" in data or not partial:
        module = data.get("module")
        if not isinstance(module, str) or not module.strip():
            errors["module"] = ["The Rego source is required."]
        else:
            clean["module"] = module
    if "mode" in data:
        _choice(errors, "mode", data["mode"], MODES)
        clean["mode"] = data["mode"]
    if "description" in data:
        if not isinstance(data["description"], str) or len(data["description"]) > 5000:
            errors["description"] = ["A string of at most 5000 characters."]
        else:
            clean["description"] = data["description"]
    _raise(errors, "policy")
    return clean


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e15"):
        return None
    return amount


def rule_fields(data: dict[str, Any], *, base: Rule | None = None) -> dict[str, Any]:
    """Every field of a rule, ``data`` merged over ``base`` (an update), checked together."""
    merged: dict[str, Any] = {}
    if base is not None:
        for key in (
            "name",
            "description",
            "kind",
            "pattern",
            "then_pattern",
            "window_seconds",
            "threshold",
            "verdict",
            "severity",
            "priority",
            "mode",
        ):
            merged[key] = getattr(base, key)
    merged.update(data)
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}

    problem = name_error(merged.get("name"))
    if problem:
        errors["name"] = [problem]
    else:
        clean["name"] = merged["name"].strip()
    description = merged.get("description", "")
    if not isinstance(description, str) or len(description) > 5000:
        errors["description"] = ["A string of at most 5000 characters."]
    else:
        clean["description"] = description
    kind = merged.get("kind")
    _choice(errors, "kind", kind, Rule.Kind.values)
    clean["kind"] = kind
    problem = pattern_error(merged.get("pattern"))
    if problem:
        errors["pattern"] = [problem]
    else:
        clean["pattern"] = merged["pattern"].strip()
    then_pattern = merged.get("then_pattern") or ""
    if kind == "sequence":
        problem = pattern_error(then_pattern)
        if problem:
            errors["then_pattern"] = [f"A sequence rule needs then_pattern. {problem}"]
        else:
            clean["then_pattern"] = then_pattern.strip()
    elif then_pattern:
        errors["then_pattern"] = ["Only sequence rules take then_pattern."]
    else:
        clean["then_pattern"] = ""
    window = merged.get("window_seconds")
    if window is None:
        if kind in ("rate", "cumulative", "sequence"):
            errors["window_seconds"] = ["Required for rate, cumulative and sequence rules."]
        clean["window_seconds"] = None
    else:
        seconds = _int(window)
        if seconds is None or not 1 <= seconds <= MAX_WINDOW_SECONDS:
            errors["window_seconds"] = [f"An integer from 1 to {MAX_WINDOW_SECONDS} (366 days)."]
        else:
            clean["window_seconds"] = seconds
    threshold = merged.get("threshold")
    if kind == "rate":
        count = (
            _int(threshold)
            if not isinstance(threshold, Decimal)
            else (int(threshold) if threshold == threshold.to_integral_value() else None)
        )
        if count is None or count < 0:
            errors["threshold"] = ["A rate rule needs a non-negative integer count."]
        else:
            clean["threshold"] = Decimal(count)
    elif kind == "cumulative":
        amount = _decimal(threshold)
        if amount is None:
            errors["threshold"] = ["A cumulative rule needs a non-negative amount."]
        elif amount != amount.quantize(Decimal("0.01")):
            errors["threshold"] = ["At most 2 decimal places."]
        else:
            clean["threshold"] = amount
    elif threshold is not None:
        errors["threshold"] = ["Only rate and cumulative rules take a threshold."]
    else:
        clean["threshold"] = None
    _choice(errors, "verdict", merged.get("verdict"), Rule.RuleVerdict.values)
    clean["verdict"] = merged.get("verdict")
    severity = merged.get("severity", "major")
    _choice(errors, "severity", severity, SEVERITIES)
    clean["severity"] = severity
    priority = _int(merged.get("priority", 50))
    if priority is None or not 1 <= priority <= 100:
        errors["priority"] = ["An integer from 1 to 100 (100 is evaluated first)."]
    else:
        clean["priority"] = priority
    mode = merged.get("mode", "enforce")
    _choice(errors, "mode", mode, MODES)
    clean["mode"] = mode
    _raise(errors, "rule")
    return clean


_CONFIG_KEYS = {
    "pii": {"detect"},
    "banned_words": {"words", "case_sensitive"},
    "payload_size": {"max_bytes"},
    "canary": {"tokens"},
}


def guardrail_fields(data: dict[str, Any], *, base: Guardrail | None = None) -> dict[str, Any]:
    """Every field of a guardrail, ``data`` merged over ``base``.

    Returns clean values; for canaries ``tokens`` (the new tokens, or UNSET to keep them)
    and a public ``config`` without them.
    """
    merged: dict[str, Any] = {}
    if base is not None:
        for key in ("name", "description", "kind", "mode", "enforcement", "stage", "severity"):
            merged[key] = getattr(base, key)
        merged["config"] = dict(base.config or {})
    config_given = "config" in data
    merged.update({k: v for k, v in data.items() if k != "config"})
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {"tokens": UNSET}

    problem = name_error(merged.get("name"))
    if problem:
        errors["name"] = [problem]
    else:
        clean["name"] = merged["name"].strip()
    description = merged.get("description", "")
    if not isinstance(description, str) or len(description) > 5000:
        errors["description"] = ["A string of at most 5000 characters."]
    else:
        clean["description"] = description
    kind = merged.get("kind")
    _choice(errors, "kind", kind, Guardrail.Kind.values)
    clean["kind"] = kind
    mode = merged.get("mode", "redact" if kind == "pii" else "block")
    _choice(errors, "mode", mode, Guardrail.Effect.values)
    if kind == "payload_size" and mode == "redact":
        errors["mode"] = ["A payload_size guardrail can block or log, not redact."]
    clean["mode"] = mode
    enforcement = merged.get("enforcement", "enforce")
    _choice(errors, "enforcement", enforcement, MODES)
    clean["enforcement"] = enforcement
    stage = merged.get("stage", "input")
    _choice(errors, "stage", stage, Guardrail.Stage.values)
    clean["stage"] = stage
    severity = merged.get("severity", "major")
    _choice(errors, "severity", severity, SEVERITIES)
    clean["severity"] = "critical" if kind == "canary" else severity

    config = data.get("config") if config_given else merged.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        errors["config"] = ["Expected an object."]
        config = {}
    elif kind in _CONFIG_KEYS:
        for key in config:
            if key not in _CONFIG_KEYS[kind] and not (
                kind == "canary" and key in ("token_count", "fingerprints") and not config_given
            ):
                errors[f"config.{key}"] = [
                    f"Unknown key; a {kind} guardrail takes {', '.join(sorted(_CONFIG_KEYS[kind]))}."
                ]
    public: dict[str, Any] = {}
    if kind == "pii":
        detect = config.get("detect")
        if detect is None:
            public["detect"] = list(detectors.PII_KINDS)
        elif (
            not isinstance(detect, list)
            or not detect
            or any(k not in detectors.PII_KINDS for k in detect)
        ):
            errors["config.detect"] = [f"A non-empty list of {', '.join(detectors.PII_KINDS)}."]
        else:
            public["detect"] = sorted(set(detect), key=detectors.PII_KINDS.index)
    elif kind == "banned_words":
        words = config.get("words")
        if (
            not isinstance(words, list)
            or not words
            or len(words) > 1000
            or any(not isinstance(w, str) or not w.strip() or len(w) > 200 for w in words)
        ):
            errors["config.words"] = [
                "A list of 1 to 1000 non-empty words or phrases (at most 200 characters each)."
            ]
        else:
            public["words"] = [w.strip() for w in words]
        case_sensitive = config.get("case_sensitive", False)
        if not isinstance(case_sensitive, bool):
            errors["config.case_sensitive"] = ["true or false."]
        else:
            public["case_sensitive"] = case_sensitive
    elif kind == "payload_size":
        size = _int(config.get("max_bytes"))
        if size is None or not 1 <= size <= MAX_REQUEST_BYTES:
            errors["config.max_bytes"] = [f"An integer from 1 to {MAX_REQUEST_BYTES}."]
        else:
            public["max_bytes"] = size
    elif kind == "canary":
        if config_given and "tokens" in config:
            tokens = config["tokens"]
            if (
                not isinstance(tokens, list)
                or not tokens
                or len(tokens) > canary.MAX_TOKENS
                or any(
                    not isinstance(t, str)
                    or not canary.MIN_TOKEN_LENGTH <= len(t.strip()) <= canary.MAX_TOKEN_LENGTH
                    for t in tokens
                )
            ):
                errors["config.tokens"] = [
                    f"A list of 1 to {canary.MAX_TOKENS} tokens of {canary.MIN_TOKEN_LENGTH} to "
                    f"{canary.MAX_TOKEN_LENGTH} characters."
                ]
            else:
                clean["tokens"] = sorted({t.strip() for t in tokens})
                public = canary.public_config(clean["tokens"])
        elif base is None or base.kind != "canary":
            errors["config.tokens"] = ["A canary guardrail needs tokens."]
        else:
            public = {k: base.config.get(k) for k in ("token_count", "fingerprints")}
    clean["config"] = public
    _raise(errors, "guardrail")
    return clean
