"""The agent page's Authorize tab (SPEC §3, §8): what governs this agent and what it did.

The agent's scope and budgets; the policies, rules and guardrails that apply to it (its
own and those for all agents) with their modes; the verdict mix of its actions over the
last 14 days (a stacked column per day) and its recent shadow verdicts — what the shadow
layers would have done.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from console.models import BUDGET_KEYS, SCOPE_KEYS
from console.roles import can

from . import charts, forms, selectors

CHART_DAYS = 14
SCOPE_LABELS = {
    "allowed_actions": "Allowed actions",
    "excluded_actions": "Excluded actions",
    "allowed_targets": "Allowed targets",
    "read_only_actions": "Read-only actions (tier 4 preset)",
    "sensitive_actions": "Sensitive actions (tier 3 preset)",
}
BUDGET_LABELS = {
    "max_actions_per_session": "Actions per session",
    "max_spend_per_session": "Spend per session",
    "max_spend_per_day": "Spend per day",
    "max_session_seconds": "Session wall-clock (seconds)",
    "max_depth": "Nesting depth",
}
# SPEC §9: an omitted scope list is no restriction, except excluded_actions (nothing).
UNRESTRICTED = {key: "none" if key == "excluded_actions" else "any" for key in SCOPE_KEYS}
PRESETS = {
    3: "Tier 3 preset: sensitive actions need approval.",
    4: "Tier 4 preset: every action that is not read-only needs approval, with four eyes.",
}


def authorize(request, agent) -> tuple[str, dict]:
    today = timezone.now().astimezone(dt.UTC).date()
    since = dt.datetime.combine(
        today - dt.timedelta(days=CHART_DAYS - 1), dt.time.min, tzinfo=dt.UTC
    )
    counts = selectors.verdict_counts(agent, since=since)
    columns = charts.daily_columns(
        selectors.daily_verdicts(agent, since=since), last_day=today, days=CHART_DAYS
    )
    scope = agent.scope or {}
    tier = agent.effective_tier or agent.risk_tier
    return "console/authorize/tab.html", {
        "scope_rows": [
            {
                "key": key,
                "label": SCOPE_LABELS[key],
                "patterns": scope.get(key),
                "none": UNRESTRICTED[key],
            }
            for key in SCOPE_KEYS
        ],
        "budget_rows": [
            {"key": key, "label": BUDGET_LABELS[key], "value": (agent.budgets or {}).get(key)}
            for key in BUDGET_KEYS
        ],
        "preset": PRESETS.get(tier),
        "policies": list(selectors.live_policies(agent).order_by("name")),
        "rules": [
            {"rule": rule, "summary": forms.rule_summary(rule)}
            for rule in selectors.live_rules(agent).order_by("-priority", "name")
        ],
        "guardrails": [
            {"guardrail": guardrail, "summary": forms.guardrail_summary(guardrail)}
            for guardrail in selectors.live_guardrails(agent).order_by("name")
        ],
        "verdict_total": sum(counts.values()),
        "verdict_bars": charts.verdict_bars(counts),
        "columns": columns,
        "chart_days": CHART_DAYS,
        "shadow_rows": selectors.recent_shadow_verdicts(agent),
        "can_manage": can(request.user, "manage_policies"),
    }
