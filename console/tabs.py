"""The five lifecycle tabs of an agent's page (SPEC §8: Assess / Authorize / Monitor /
Verify / Adapt).

Each tab is provided by the app that owns that part of the lifecycle: a function
``(request, agent) -> (template_name, context)`` named here by dotted path, imported when
the tab is shown.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

TABS = [
    ("assess", "Assess", "assessments.tabs.assess"),
    ("authorize", "Authorize", "console.authorize.tabs.authorize"),
    ("monitor", "Monitor", "trust.tabs.monitor"),
    ("verify", "Verify", "audit.tabs.verify"),
    ("adapt", "Adapt", "console.tabs.adapt"),
]
TAB_KEYS = {key for key, _, _ in TABS}


def render_context(tab: str, request, agent) -> tuple[str, dict]:
    provider = next(path for key, _, path in TABS if key == tab)
    return import_string(provider)(request, agent)


def adapt(request, agent) -> tuple[str, dict]:
    """Containment: status, sessions (halt), keys, and the history of every transition."""
    from . import selectors
    from .roles import can

    return "console/tabs/adapt.html", {
        "sessions": selectors.open_sessions(agent),
        "keys": agent.keys.all(),
        "history": selectors.containment_history(agent),
        "can_contain": can(request.user, "contain"),
        "can_manage_keys": can(request.user, "manage_keys"),
    }
