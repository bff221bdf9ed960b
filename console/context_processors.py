"""Values every console page needs (navigation, role flags, the approvals badge)."""

from __future__ import annotations

from django.conf import settings

from .roles import can, roles_of


def _page_url(request) -> str:
    """The URL of the page the user is on, also for HTMX partial requests."""
    htmx = getattr(request, "htmx", None)
    if htmx and htmx.current_url_abs_path:
        return htmx.current_url_abs_path
    return request.get_full_path()


def console(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"embedded_mode": settings.EMBEDDED}
    from approvals.selectors import pending_count

    return {
        "embedded_mode": settings.EMBEDDED,
        "page_url": _page_url(request),
        "user_roles": sorted(roles_of(user)),
        "can_contain": can(user, "contain"),
        "can_register": can(user, "register_agent"),
        "pending_approvals": pending_count(),
        "csp_nonce": getattr(request, "csp_nonce", ""),
    }
