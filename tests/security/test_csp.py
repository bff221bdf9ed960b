"""Content-Security-Policy: nonces, and no inline code on any page (security baseline).

The header must carry a per-response nonce for scripts and styles and never
``'unsafe-inline'`` or ``'unsafe-eval'``. Then every GET page of the console, with real
objects in its URL (``world.py``), is parsed as a full page and as the HTMX fragment the
page swaps in (and, for every role, by the access walk in test_access_with_real_objects):
every ``<script>`` and ``<style>`` must carry that response's nonce, and no element may
have an inline event handler (``onclick=`` …), a ``style=`` attribute (style-src has no
``'unsafe-inline'`` either) or a ``javascript:`` URL (cspcheck.py).
"""

from __future__ import annotations

from django.test import Client

from tests.security.cspcheck import InlineCodeFinder, inline_code_problems, parse_policy
from tests.security.test_access_with_real_objects import ROUTES
from tests.security.world import build_world


def test_the_policy_has_nonces_and_no_unsafe_sources(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/")
    policy = parse_policy(response["Content-Security-Policy"])
    for directive in ("script-src", "style-src"):
        sources = policy[directive]
        assert any(s.startswith("'nonce-") and len(s) > 20 for s in sources), sources
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(sources), sources
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert "default-src" in policy


def test_each_response_gets_a_fresh_nonce(client, admin_user):
    client.force_login(admin_user)
    first = parse_policy(client.get("/")["Content-Security-Policy"])["script-src"]
    second = parse_policy(client.get("/")["Content-Security-Policy"])["script-src"]
    assert [s for s in first if "nonce" in s] != [s for s in second if "nonce" in s]


def test_the_finder_catches_inline_code():
    finder = InlineCodeFinder("abc")
    finder.feed(
        '<script nonce="abc"></script><script>x()</script><style></style>'
        '<a href=" javascript:alert(1)" onclick="x()">a</a><div style="color:red"></div>'
        '<button hx-on:click="x()"></button>'
    )
    assert len(finder.problems) == 6, finder.problems


def _get_pages():
    return [
        (route, name) for route, name, kind, _ in ROUTES if kind in {"page", "public", "schema"}
    ]


def test_no_page_or_fragment_has_inline_code(make_operator):
    """Full pages are checked for every role by the access walk
    (test_access_with_real_objects); here every page as its HTMX fragment, as an admin,
    who sees every button and form."""
    admin = make_operator("admin", username="csp-admin")
    world = build_world(admin)
    client = Client()
    client.force_login(admin)
    problems = {}
    html = 0
    for route, name in _get_pages():
        path = world.path(route)
        for headers in ({}, {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": path}):
            response = client.get(path, **headers)
            if getattr(response, "streaming", False):
                continue
            if not response["Content-Type"].startswith("text/html"):
                continue
            html += response.status_code == 200
            found = inline_code_problems(response)
            if found:
                problems[(name, path, bool(headers), response.status_code)] = found
    assert not problems
    assert html >= 30  # the walk saw real pages and fragments, not just refusals
