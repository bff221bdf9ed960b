"""Validation of an agent's scope and settings documents (SPEC §9), shared by API and UI.

Each function returns the normalised document or raises ``Invalid`` naming every bad field
with its reason, using dotted paths (``settings.budgets.max_depth``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import Invalid
from .models import (
    APPROVAL_TTL_MAX,
    APPROVAL_TTL_MIN,
    BUDGET_KEYS,
    SCOPE_KEYS,
    Agent,
    default_budgets,
    default_scope,
)

MAX_PATTERNS = 200
MAX_PATTERN_LENGTH = 200
MONEY_BUDGETS = {"max_spend_per_session", "max_spend_per_day"}


def normalize_scope(scope: Any, *, field: str = "scope") -> dict:
    if scope is None:
        return default_scope()
    errors: dict[str, list[str]] = {}
    if not isinstance(scope, dict):
        raise Invalid("scope must be an object", fields={field: ["Expected an object."]})
    for key in scope:
        if key not in SCOPE_KEYS:
            errors[f"{field}.{key}"] = [
                f"Unknown scope key; expected one of {', '.join(SCOPE_KEYS)}."
            ]
    result = default_scope()
    for key in SCOPE_KEYS:
        if key not in scope:
            continue
        value = scope[key]
        if value is None:
            result[key] = [] if key == "excluded_actions" else None
            continue
        if not isinstance(value, list):
            errors[f"{field}.{key}"] = ["Expected a list of glob patterns."]
            continue
        if len(value) > MAX_PATTERNS:
            errors[f"{field}.{key}"] = [f"At most {MAX_PATTERNS} patterns."]
            continue
        bad = [
            p
            for p in value
            if not isinstance(p, str) or not p.strip() or len(p) > MAX_PATTERN_LENGTH
        ]
        if bad:
            errors[f"{field}.{key}"] = [
                f"Each pattern must be a non-empty string of at most {MAX_PATTERN_LENGTH} characters."
            ]
            continue
        result[key] = [p.strip() for p in value]
    if errors:
        raise Invalid("The scope is not valid.", fields=errors)
    return result


def normalize_settings(
    settings_doc: Any, *, base: dict | None = None, field: str = "settings"
) -> dict:
    """Return ``{fail_mode, pause_on_halt, approval_ttl_seconds, budgets}`` (defaults filled)."""
    result = {
        "fail_mode": Agent.FailMode.CLOSED.value,
        "pause_on_halt": None,
        "approval_ttl_seconds": 1800,
        "budgets": default_budgets(),
    }
    if base:
        result.update({k: v for k, v in base.items() if k != "budgets"})
        result["budgets"] = {**default_budgets(), **(base.get("budgets") or {})}
    if settings_doc is None:
        return result
    if not isinstance(settings_doc, dict):
        raise Invalid("settings must be an object", fields={field: ["Expected an object."]})
    errors: dict[str, list[str]] = {}
    allowed = {"fail_mode", "pause_on_halt", "approval_ttl_seconds", "budgets"}
    for key in settings_doc:
        if key not in allowed:
            errors[f"{field}.{key}"] = [
                f"Unknown setting; expected one of {', '.join(sorted(allowed))}."
            ]
    if "fail_mode" in settings_doc:
        if settings_doc["fail_mode"] not in Agent.FailMode.values:
            errors[f"{field}.fail_mode"] = ['Must be "closed" or "open".']
        else:
            result["fail_mode"] = settings_doc["fail_mode"]
    if "pause_on_halt" in settings_doc:
        value = settings_doc["pause_on_halt"]
        if value is not None and not isinstance(value, bool):
            errors[f"{field}.pause_on_halt"] = ["Must be true, false or null (automatic)."]
        else:
            result["pause_on_halt"] = value
    if "approval_ttl_seconds" in settings_doc:
        value = settings_doc["approval_ttl_seconds"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not APPROVAL_TTL_MIN <= value <= APPROVAL_TTL_MAX
        ):
            errors[f"{field}.approval_ttl_seconds"] = [
                f"Must be an integer from {APPROVAL_TTL_MIN} (1 minute) to {APPROVAL_TTL_MAX} (7 days)."
            ]
        else:
            result["approval_ttl_seconds"] = value
    if "budgets" in settings_doc:
        budgets = settings_doc["budgets"]
        if budgets is None:
            result["budgets"] = default_budgets()
        elif not isinstance(budgets, dict):
            errors[f"{field}.budgets"] = ["Expected an object."]
        else:
            for key, value in budgets.items():
                path = f"{field}.budgets.{key}"
                if key not in BUDGET_KEYS:
                    errors[path] = [f"Unknown budget; expected one of {', '.join(BUDGET_KEYS)}."]
                elif value is None:
                    result["budgets"][key] = None
                elif key in MONEY_BUDGETS:
                    amount = _money(value)
                    if amount is None:
                        errors[path] = [
                            "Must be a non-negative amount (number or decimal string) or null."
                        ]
                    else:
                        result["budgets"][key] = amount
                elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    errors[path] = ["Must be a non-negative integer or null (unlimited)."]
                else:
                    result["budgets"][key] = value
    if errors:
        raise Invalid("The settings are not valid.", fields=errors)
    return result


def _money(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e15"):
        return None
    return format(amount.quantize(Decimal("0.01")), "f")


def require_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("A reason is required.", fields={"reason": ["This field is required."]})
    if len(reason) > 2000:
        raise Invalid("The reason is too long.", fields={"reason": ["At most 2000 characters."]})
    return reason.strip()
