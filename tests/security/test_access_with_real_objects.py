"""Every URL and API endpoint × every role × every method, with real objects (SPEC §8).

``tests/test_access_matrix.py`` walks the URL patterns with random ids, which most views
answer with 404 after the role check. This walk puts the ids of a real world
(``world.py``) into every route, so each view gets past its lookup: an allowed role must
reach the view (no 401/403, no 404 on reads, never a 5xx) and a refused one must get 403
(401/403 for the API) however real the object is; every HTML page a role gets is also
checked for inline code the CSP would block (cspcheck.py). Agent endpoints are walked with the
agent's own key, with another agent's key, and with operator credentials.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.api.base import AgentEndpoint
from console.authorize.models import Action
from console.roles import PERMISSIONS, ROLES, can
from tests.security.cspcheck import inline_code_problems
from tests.security.world import FIXED, build_world
from tests.test_access_matrix import HTTP_METHODS, PUBLIC, SCHEMA, walk

# Writes last (a delete must not hide the object from the reads), DELETE at the very end.
ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}


def classify():
    """(route, url name, kind, {method: permission}) for every non-admin URL pattern."""
    from rest_framework.views import APIView

    found = []
    for route, pattern in walk():
        if route.startswith(("admin/", "static/")):
            continue
        callback = pattern.callback
        name = pattern.name or route
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if name in PUBLIC:
            found.append((route, name, "public", {}))
        elif name in SCHEMA:
            found.append((route, name, "schema", {"get": "read"}))
        elif view_class is not None and issubclass(view_class, AgentEndpoint):
            methods = [m for m in HTTP_METHODS if hasattr(view_class, m)]
            found.append((route, name, "agent", dict.fromkeys(methods, "agent")))
        elif view_class is not None and issubclass(view_class, APIView):
            per = getattr(view_class, "permissions", None)
            methods = {
                m: (
                    per.get(m.upper(), per.get("*", "read"))
                    if per
                    else getattr(view_class, "permission", "read")
                )
                for m in HTTP_METHODS
                if hasattr(view_class, m)
            }
            found.append((route, name, "api", methods))
        else:
            permission = getattr(callback, "warden_permission", None)
            found.append((route, name, "page", {"get": permission, "post": permission}))
    return found


ROUTES = classify()
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def _calls(world):
    calls = [
        (ORDER[method], world.path(route), name, kind, method, permission)
        for route, name, kind, methods in ROUTES
        for method, permission in methods.items()
    ]
    return sorted(calls, key=lambda c: c[0])


# Agent endpoints get a well-formed body, so a foreign key is refused for the session it
# names and not merely for a malformed proposal.
AGENT_BODIES = {
    "api-sessions": {"goal": "security walk"},
    "api-session-actions": {"name": "invoice.read", "target": "vendor:acme"},
    "api-action-result": {"status": Action.ResultStatus.values[0]},
}


def _is_html(response) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.startswith("text/html") and not getattr(response, "streaming", False)


def _request(client, method, path, *, api, body=None):
    if api:
        return getattr(client, method)(
            path, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
    return getattr(client, method)(path)


def test_every_route_parameter_has_a_real_object(admin_user):
    """A new URL with a new kind of id fails here until world.py makes one."""
    world = build_world(admin_user)
    known = set(FIXED) | set(world.ids)
    missing = {p for route, *_ in ROUTES for p in PARAM.findall(route) if p not in known}
    assert not missing
    kinds = {kind for _, _, kind, _ in ROUTES}
    assert kinds == {"public", "schema", "page", "api", "agent"}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_views_its_permissions_allow(make_operator, role):
    admin = make_operator("admin", username="world-admin")
    world = build_world(admin)
    user = make_operator(role)
    page = Client()
    page.force_login(user)
    api = APIClient()
    api.force_authenticate(user)
    problems = []
    for _, path, _name, kind, method, permission in _calls(world):
        if kind == "public":
            continue
        is_api = kind in {"api", "agent"}
        response = _request(api if is_api else page, method, path, api=is_api)
        status = response.status_code
        allowed = kind != "agent" and can(user, permission)
        if status >= 500:
            problems.append((role, method, path, "server error", status))
        elif allowed and status in (401, 403):
            problems.append((role, method, path, f"refused but has {permission!r}", status))
        elif allowed and method == "get" and status == 404:
            problems.append((role, method, path, "read did not find the real object", status))
        elif not allowed and status not in ((401, 403) if is_api else (403,)):
            problems.append((role, method, path, f"let in without {permission!r}", status))
        if method == "get" and kind != "api" and _is_html(response):
            # What this role sees must not hold inline code the CSP would block (test_csp).
            problems.extend((role, path, found) for found in inline_code_problems(response))
    assert not problems


def test_anonymous_requests_never_reach_a_real_object(client, admin_user):
    world = build_world(admin_user)
    api = APIClient()
    problems = []
    for _, path, _name, kind, method, _permission in _calls(world):
        if kind == "public":
            response = client.get(path)
            if response.status_code != 200:
                problems.append((method, path, response.status_code))
            continue
        if kind == "page":
            response = getattr(client, method)(path)
            if response.status_code != 302 or "/login/" not in response["Location"]:
                problems.append((method, path, response.status_code))
        else:
            response = _request(api, method, path, api=True)
            if response.status_code not in (401, 403):
                problems.append((method, path, response.status_code))
    assert not problems


def test_agent_keys_open_only_their_own_agent_endpoints(admin_user):
    world = build_world(admin_user)
    own = APIClient()
    own.credentials(HTTP_AUTHORIZATION=f"Bearer {world.agent_key}")
    foreign = APIClient()
    foreign.credentials(HTTP_AUTHORIZATION=f"Bearer {world.foreign_key}")
    problems = []
    for _, path, name, kind, method, _permission in _calls(world):
        if kind in {"public"}:
            continue
        if kind != "agent":
            # An agent key is never an operator credential.
            response = _request(own, method, path, api=True)
            if kind == "page":
                ok = response.status_code == 302 and "/login/" in response["Location"]
            else:
                ok = response.status_code in (401, 403)
            if not ok:
                problems.append(("agent key on operator view", method, path, response.status_code))
            continue
        body = AGENT_BODIES.get(name)
        if "<" in next(r for r, n, *_ in ROUTES if n == name):
            # The other agent's key on this agent's session: refused, never served.
            response = _request(foreign, method, path, api=True, body=body)
            if response.status_code not in (403, 404):
                problems.append(("foreign key", method, path, response.status_code))
        response = _request(own, method, path, api=True, body=body)
        if response.status_code in (401, 403) or response.status_code >= 500:
            problems.append(("own key", method, path, response.status_code))
    assert not problems


def test_operator_table_is_what_the_spec_says():
    assert PERMISSIONS["decide"] == {"admin", "reviewer"}
    assert PERMISSIONS["contain"] == {"admin", "oncall"}
    assert PERMISSIONS["export"] == {"admin", "compliance"}
    assert PERMISSIONS["assess"] == {"admin", "compliance"}
