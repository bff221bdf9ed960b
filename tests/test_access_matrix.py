"""SPEC §8: every view and API endpoint checks its role.

Walks every URL pattern of the project. Each operator view must declare the permission it
needs (``role_required`` or a DRF view's ``permission``/``permissions``); each agent
endpoint must use agent-key authentication; only a short list of pages is public. Then for
every role × endpoint × method the request is refused (403) exactly when the role lacks
the permission, and anonymous requests never get in.
"""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from console.api.base import AgentEndpoint
from console.roles import PERMISSIONS, ROLES, can

PUBLIC = {"login", "logout", "healthz", "warden-keys"}
SCHEMA = {"api-schema", "api-docs"}  # any logged-in operator
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def walk(patterns=None, prefix=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def concrete(route: str) -> str:
    path = route
    while "<" in path:
        start = path.index("<")
        end = path.index(">", start)
        name = path[start + 1 : end].split(":")[-1]
        fixed = {"tab": "adapt", "action": "pause", "outcome": "pause"}
        value = fixed.get(name) or str(uuid.uuid4())
        path = path[:start] + value + path[end + 1 :]
    return "/" + path.lstrip("^").rstrip("$")


def endpoints():
    """(path, url name, kind, {method: permission})"""
    found = []
    for route, pattern in walk():
        callback = pattern.callback
        name = pattern.name or route
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if name in PUBLIC or route.startswith("static/") or route.startswith("admin/"):
            continue
        if name in SCHEMA:
            found.append((concrete(route), name, "schema", {}))
            continue
        if view_class is not None and issubclass(view_class, APIView):
            if issubclass(view_class, AgentEndpoint):
                methods = [m for m in HTTP_METHODS if hasattr(view_class, m)]
                found.append((concrete(route), name, "agent", dict.fromkeys(methods, "agent")))
                continue
            methods = {}
            for method in HTTP_METHODS:
                if hasattr(view_class, method):
                    per = getattr(view_class, "permissions", None)
                    methods[method] = (
                        per.get(method.upper(), per.get("*", "read"))
                        if per
                        else getattr(view_class, "permission", "read")
                    )
            found.append((concrete(route), name, "api", methods))
            continue
        permission = getattr(callback, "warden_permission", None)
        found.append((concrete(route), name, "page", {"get": permission, "post": permission}))
    return found


ENDPOINTS = endpoints()


def test_every_operator_endpoint_declares_a_known_permission():
    undeclared = [
        (path, name)
        for path, name, kind, methods in ENDPOINTS
        if kind in {"page", "api"} and not all(methods.values())
    ]
    assert not undeclared, f"views without a role check: {undeclared}"
    unknown = {
        p for _, _, kind, methods in ENDPOINTS if kind in {"page", "api"} for p in methods.values()
    } - set(PERMISSIONS)
    assert not unknown


@pytest.mark.parametrize(
    ("path", "name", "kind", "methods"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS]
)
def test_anonymous_is_kept_out(client, db, path, name, kind, methods):
    for method in methods or {"get": None}:
        response = getattr(client, method)(path)
        if kind == "page":
            assert response.status_code == 302 and "/login/" in response["Location"], (method, path)
        else:
            assert response.status_code in (401, 403), (method, path, response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_gets_exactly_what_its_permissions_allow(client, make_operator, role):
    from rest_framework.test import APIClient

    user = make_operator(role)
    page_client = client
    page_client.force_login(user)
    api_client = APIClient()
    api_client.force_authenticate(user)
    problems = []
    for path, _name, kind, methods in ENDPOINTS:
        for method, permission in methods.items():
            if kind == "page":
                response = getattr(page_client, method)(path)
                allowed = can(user, permission)
            elif kind == "api":
                response = getattr(api_client, method)(path, {}, format="json")
                allowed = can(user, permission)
            elif kind == "agent":
                response = getattr(api_client, method)(path, {}, format="json")
                allowed = False  # operators never pass agent-key endpoints
            else:
                continue
            denied = response.status_code in (401, 403)
            if allowed == denied:
                problems.append((role, method.upper(), path, permission, response.status_code))
    assert not problems


def test_the_matrix_covers_the_registry_endpoints():
    names = {name for _, name, _, _ in ENDPOINTS}
    assert {
        "agent-list",
        "agent-contain",
        "api-agents",
        "api-agent-pause",
        "api-sessions",
        "api-session-halt",
    } <= names
    # A reviewer may not contain, an on-call may not issue keys: spot-check the table.
    assert "reviewer" not in PERMISSIONS["contain"] and "oncall" not in PERMISSIONS["manage_keys"]


def test_schema_needs_a_login(client, db, make_operator):
    assert client.get("/api/schema/").status_code in (401, 403)
    client.force_login(make_operator("viewer"))
    assert client.get("/api/schema/").status_code == 200
