"""What the console's HTML forms post, turned into the arguments of the services (SPEC §9
bodies) — and back, to fill a form from a saved object.

The services validate (``console.authorize.validation``); this module only translates: form
strings to the values the services take (an empty field is "not given", a window is a
number and a unit, word lists are one per line), and the field names of the services'
errors to the names the templates use (``config.words`` → ``config_words``).
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from django.http import QueryDict

from . import detectors
from .layers.rules import window_text
from .models import Guardrail, Mode, Policy, Rule

# A window is entered as a number and a unit; stored in seconds.
WINDOW_UNITS = (("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86400))
UNIT_SECONDS = dict(WINDOW_UNITS)
MODE_HELP = {
    Mode.ENFORCE: "its verdicts decide actions",
    Mode.SHADOW: "its verdicts are recorded as shadow verdicts and never change the outcome",
    Mode.DISABLED: "not evaluated",
}
STARTER_MODULE = """package warden.example

import rego.v1

# The input document is SPEC §3.3: input.agent, input.session, input.action,
# input.history, input.now. Define `verdict` (allow, block, halt, require_approval)
# and, optionally, `reason` and `severity`.

default verdict := "allow"

verdict := "require_approval" if {
	is_number(input.action.amount) # actions without an amount have null
	input.action.amount > 100000
}

reason := "amounts over 100,000 need a person" if verdict == "require_approval"
"""
GENERATED_TOKEN_PREFIX = "wdn-canary-"
MAX_GENERATED_TOKENS = 20


class FormError(Exception):
    """Form input the services never see (a bad agent id, a window that is not a number)."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {v[0]}" for k, v in fields.items()))
        self.fields = fields


# Form fields whose errors the templates show under the service's field name.
ERROR_KEYS = {
    "window_value": "window_seconds",
    "window_unit": "window_seconds",
    "words": "config_words",
    "max_bytes": "config_max_bytes",
    "tokens": "config_tokens",
}


def refuse_nul(form: dict[str, Any]) -> None:
    """FormError for any text field holding a NUL character: no field may contain one
    (and PostgreSQL text columns cannot store it)."""
    bad = {
        ERROR_KEYS.get(key, key): ["NUL characters are not allowed."]
        for key, value in form.items()
        if isinstance(value, str) and "\x00" in value
    }
    if bad:
        raise FormError(bad)


def template_errors(fields: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """Service error fields as template keys (``config.words`` → ``config_words``)."""
    return {key.replace(".", "_"): value for key, value in (fields or {}).items()}


def _text(data: QueryDict, key: str, default: str = "") -> str:
    value = data.get(key, default)
    return value if isinstance(value, str) else default


def agent_choice(value: str, field: str = "agent"):
    """``""`` → None (every agent); an agent id → the agent; anything else → FormError."""
    from console.models import Agent

    value = (value or "").strip()
    if not value:
        return None
    try:
        agent = Agent.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        agent = None
    if agent is None:
        raise FormError({field: ["No such agent."]})
    return agent


def lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# --- policies ---------------------------------------------------------------------------
def policy_form(data: QueryDict) -> dict[str, str]:
    return {
        "name": _text(data, "name").strip(),
        "description": _text(data, "description"),
        "agent": _text(data, "agent"),
        "mode": _text(data, "mode", Mode.SHADOW),
        "module": _text(data, "module").replace("\r\n", "\n"),
    }


def policy_initial(policy: Policy | None) -> dict[str, str]:
    if policy is None:
        return {
            "name": "",
            "description": "",
            "agent": "",
            "mode": Mode.SHADOW,
            "module": STARTER_MODULE,
        }
    return {
        "name": policy.name,
        "description": policy.description,
        "agent": str(policy.agent_id or ""),
        "mode": policy.mode,
        "module": policy.module,
    }


def parse_input_document(text: str) -> dict[str, Any]:
    """The test panel's JSON input document; FormError naming the line of a JSON error."""
    if not (text or "").strip():
        raise FormError({"input": ["Paste an input document (a JSON object) or load one."]})
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormError(
            {"input": [f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."]}
        ) from None
    if not isinstance(document, dict):
        raise FormError({"input": ["The input document must be a JSON object."]})
    return document


# --- rules ------------------------------------------------------------------------------
def split_window(seconds: int | None) -> tuple[str, str]:
    """Seconds → (number, unit) with the largest unit that divides them."""
    if not seconds:
        return "", "hours"
    for unit, size in reversed(WINDOW_UNITS):
        if seconds % size == 0:
            return str(seconds // size), unit
    return str(seconds), "seconds"


def rule_form(data: QueryDict) -> dict[str, str]:
    return {
        key: _text(data, key, default).strip() if key != "description" else _text(data, key)
        for key, default in (
            ("name", ""),
            ("description", ""),
            ("kind", "rate"),
            ("pattern", ""),
            ("then_pattern", ""),
            ("window_value", ""),
            ("window_unit", "hours"),
            ("threshold", ""),
            ("verdict", "block"),
            ("severity", "major"),
            ("priority", "50"),
            ("agent", ""),
            ("mode", Mode.SHADOW),
        )
    }


def rule_initial(rule: Rule | None) -> dict[str, str]:
    if rule is None:
        return rule_form(QueryDict())
    value, unit = split_window(rule.window_seconds)
    threshold = ""
    if rule.threshold is not None:
        threshold = str(int(rule.threshold)) if rule.kind == "rate" else format(rule.threshold, "f")
    return {
        "name": rule.name,
        "description": rule.description,
        "kind": rule.kind,
        "pattern": rule.pattern,
        "then_pattern": rule.then_pattern,
        "window_value": value,
        "window_unit": unit,
        "threshold": threshold,
        "verdict": rule.verdict,
        "severity": rule.severity,
        "priority": str(rule.priority),
        "agent": str(rule.agent_id or ""),
        "mode": rule.mode,
    }


def rule_fields(form: dict[str, str]) -> dict[str, Any]:
    """The rule service's fields (everything but ``agent``); FormError for a bad window."""
    errors: dict[str, list[str]] = {}
    window: int | None = None
    if form["window_value"]:
        unit = UNIT_SECONDS.get(form["window_unit"])
        if unit is None:
            errors["window_seconds"] = ["Choose seconds, minutes, hours or days."]
        elif not form["window_value"].isdigit():
            errors["window_seconds"] = ["A whole number."]
        else:
            window = int(form["window_value"]) * unit
    if errors:
        raise FormError(errors)
    return {
        "name": form["name"],
        "description": form["description"],
        "kind": form["kind"],
        "pattern": form["pattern"],
        "then_pattern": form["then_pattern"],
        "window_seconds": window,
        "threshold": form["threshold"] or None,
        "verdict": form["verdict"],
        "severity": form["severity"],
        "priority": form["priority"] or 50,
        "mode": form["mode"],
    }


def rule_summary(rule: Rule) -> str:
    """One line saying what a rule looks for (the lists and the Authorize tab)."""
    within = "" if not rule.window_seconds else f" within {window_text(rule.window_seconds)}"
    if rule.kind == "rate":
        return f"more than {int(rule.threshold or 0)} × {rule.pattern}{within}"
    if rule.kind == "cumulative":
        return f"sum of {rule.pattern} amounts over {rule.threshold or 0:f}{within}"
    if rule.kind == "sequence":
        return f"{rule.pattern} then {rule.then_pattern}{within}"
    if rule.kind == "first_seen":
        scope = " (ever)" if not rule.window_seconds else within
        return f"{rule.pattern} on a target never seen before{scope}"
    return rule.pattern


# --- guardrails -------------------------------------------------------------------------
GUARDRAIL_FORM_KINDS = [
    (value, label) for value, label in Guardrail.Kind.choices if value != Guardrail.Kind.CANARY
]


def guardrail_form(data: QueryDict, *, kind: str | None = None) -> dict[str, Any]:
    kind = kind or _text(data, "kind", "pii")
    return {
        "name": _text(data, "name").strip(),
        "description": _text(data, "description"),
        "kind": kind,
        "mode": _text(data, "mode", "redact" if kind == "pii" else "block"),
        "enforcement": _text(data, "enforcement", Mode.SHADOW),
        "stage": _text(data, "stage", "both" if kind == "canary" else "input"),
        "severity": _text(data, "severity", "major"),
        "agent": _text(data, "agent"),
        "detect": [k for k in data.getlist("detect") if isinstance(k, str)]
        if "detect" in data or data.get("detect_shown")
        else list(detectors.PII_KINDS),
        "words": _text(data, "words"),
        "case_sensitive": data.get("case_sensitive") in ("on", "true", "1"),
        "max_bytes": _text(data, "max_bytes", "65536").strip(),
    }


def guardrail_initial(guardrail: Guardrail | None) -> dict[str, Any]:
    if guardrail is None:
        return guardrail_form(QueryDict())
    config = guardrail.config or {}
    return {
        "name": guardrail.name,
        "description": guardrail.description,
        "kind": guardrail.kind,
        "mode": guardrail.mode,
        "enforcement": guardrail.enforcement,
        "stage": guardrail.stage,
        "severity": guardrail.severity,
        "agent": str(guardrail.agent_id or ""),
        "detect": list(config.get("detect") or detectors.PII_KINDS),
        "words": "\n".join(config.get("words") or ()),
        "case_sensitive": bool(config.get("case_sensitive")),
        "max_bytes": str(config.get("max_bytes") or "65536"),
    }


def guardrail_fields(form: dict[str, Any]) -> dict[str, Any]:
    """The guardrail service's fields (everything but ``agent``). Canary tokens are not
    edited here (see :func:`canary_tokens`): the saved ones are kept."""
    fields: dict[str, Any] = {
        "name": form["name"],
        "description": form["description"],
        "kind": form["kind"],
        "mode": form["mode"],
        "enforcement": form["enforcement"],
        "stage": form["stage"],
        "severity": form["severity"],
    }
    kind = form["kind"]
    if kind == "pii":
        fields["config"] = {"detect": form["detect"]}
    elif kind == "banned_words":
        fields["config"] = {"words": lines(form["words"]), "case_sensitive": form["case_sensitive"]}
    elif kind == "payload_size":
        fields["config"] = {"max_bytes": form["max_bytes"]}
    return fields


def guardrail_summary(guardrail: Guardrail) -> str:
    config = guardrail.config or {}
    if guardrail.kind == "pii":
        return ", ".join(config.get("detect") or detectors.PII_KINDS)
    if guardrail.kind == "banned_words":
        words = config.get("words") or []
        return f"{len(words)} word{'s' if len(words) != 1 else ''}" + (
            ", case-sensitive" if config.get("case_sensitive") else ""
        )
    if guardrail.kind == "payload_size":
        return f"at most {config.get('max_bytes')} bytes"
    if guardrail.kind == "canary":
        count = config.get("token_count") or 0
        return f"{count} token{'s' if count != 1 else ''} (values never shown)"
    return ""


# --- canary tokens ----------------------------------------------------------------------
def canary_form(data: QueryDict) -> dict[str, Any]:
    return {
        "name": _text(data, "name").strip(),
        "description": _text(data, "description"),
        "agent": _text(data, "agent"),
        "stage": _text(data, "stage", "both"),
        "enforcement": _text(data, "enforcement", Mode.ENFORCE),
        "generate": _text(data, "generate", "3").strip(),
        # Never echoed back into a form: a refused form asks for the tokens again.
        "tokens": _text(data, "tokens"),
    }


def generate_tokens(count: int) -> list[str]:
    """Fresh random canary tokens: ``wdn-canary-`` and 24 random hex digits."""
    return [GENERATED_TOKEN_PREFIX + secrets.token_hex(12) for _ in range(count)]


def canary_tokens(form: dict[str, Any]) -> list[str]:
    """The tokens typed in (one per line) plus ``generate`` fresh ones."""
    typed = lines(form["tokens"])
    raw = form["generate"] or "0"
    if not raw.isdigit() or int(raw) > MAX_GENERATED_TOKENS:
        raise FormError({"generate": [f"A number from 0 to {MAX_GENERATED_TOKENS}."]})
    tokens = typed + generate_tokens(int(raw))
    if not tokens:
        raise FormError({"config_tokens": ["Type at least one token or generate some."]})
    return tokens
