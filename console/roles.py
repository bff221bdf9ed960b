"""Operator roles (SPEC §8) and the checks every view and API endpoint makes.

Roles are Django groups; a user may hold several. ``admin`` may do everything; every role
may read. Each write names the roles allowed to do it, in one table (``PERMISSIONS``) so
the console, the API and the tests that walk every endpoint agree. A refusal is itself an
event (``access.denied``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.permissions import BasePermission

ADMIN = "admin"
COMPLIANCE = "compliance"
REVIEWER = "reviewer"
ONCALL = "oncall"
VIEWER = "viewer"
ROLES = (ADMIN, COMPLIANCE, REVIEWER, ONCALL, VIEWER)

# What each role may do beyond reading. admin may do all of it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "register_agent": frozenset({ADMIN, COMPLIANCE}),
    "edit_agent": frozenset({ADMIN}),
    "manage_keys": frozenset({ADMIN}),
    "contain": frozenset({ADMIN, ONCALL}),  # pause, resume, revoke, halt
    "assess": frozenset({ADMIN, COMPLIANCE}),
    "decide": frozenset({ADMIN, REVIEWER}),
    "manage_policies": frozenset({ADMIN}),
    "export": frozenset({ADMIN, COMPLIANCE}),
    "manage_users": frozenset({ADMIN}),
    "recalculate_trust": frozenset({ADMIN}),
}


def roles_of(user) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    if not hasattr(user, "is_active") or not user.is_active:
        return frozenset()
    cached = getattr(user, "_warden_roles", None)
    if cached is None:
        names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if user.is_superuser:
            names.add(ADMIN)
        cached = frozenset(names)
        user._warden_roles = cached
    return cached


def can(user, permission: str) -> bool:
    allowed = PERMISSIONS[permission]
    held = roles_of(user)
    return bool(held & allowed) or ADMIN in held


def actor_for(user) -> str:
    return f"user:{user.get_username()}"


def record_denied(request: HttpRequest, permission: str, *, user=None) -> None:
    """SPEC §8: a 403 is itself an event."""
    from audit.services import record

    user = user if user is not None else getattr(request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else ""
    with transaction.atomic():
        record(
            "access.denied",
            actor=f"user:{name}" if name else "system:anonymous",
            result="denied",
            reason=f"needs permission {permission!r}",
            payload={
                "method": request.method,
                "path": request.path[:500],
                "permission": permission,
            },
        )


def role_required(permission: str) -> Callable:
    """Function-view decorator: login required, then the named permission."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not can(request.user, permission):
                record_denied(request, permission)
                return render(
                    request,
                    "403.html",
                    {"permission": permission, "roles": sorted(PERMISSIONS[permission])},
                    status=403,
                )
            return view(request, *args, **kwargs)

        wrapper.warden_permission = permission  # read by the access-matrix test
        return wrapper

    return decorator


class IsOperator(BasePermission):
    """Default API permission: an operator with any role; writes need ``permission``.

    Views set ``permission`` (one name for every method) or ``permissions`` (per method),
    e.g. ``permissions = {"GET": "read", "POST": "register_agent"}``.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not getattr(user, "is_authenticated", False) or getattr(user, "is_agent", False):
            return False
        needed = required_permission(view, request.method)
        if can(user, needed):
            return True
        record_denied(request, needed, user=user)
        return False


def required_permission(view, method: str) -> str:
    per_method = getattr(view, "permissions", None)
    if per_method:
        return per_method.get(method, per_method.get("*", "read"))
    return getattr(view, "permission", "read")


def permission_roles(permission: str) -> Iterable[str]:
    return sorted(PERMISSIONS[permission] | {ADMIN})
