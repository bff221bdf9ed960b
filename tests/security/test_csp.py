"""Content-Security-Policy: nonces, and no inline code on any page (security baseline).

The header must carry a per-response nonce for scripts and styles and never
``'unsafe-inline'`` or ``'unsafe-eval'``. Then every GET page of the console is rendered
for every role, with real objects in its URL (``world.py``), as a full page and as the
HTMX fragment the page swaps in, and the HTML is parsed: every ``<script>`` and ``<style>``
must carry that response's nonce, and no element may have an inline event handler
(``onclick=`` …), a ``style=`` attribute (style-src has no ``'unsafe-inline'`` either) or
a ``javascript:`` URL.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from console.roles import ROLES
from tests.security.test_access_with_real_objects import ROUTES
from tests.security.world import build_world

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "hx-get", "hx-post"}


def parse_policy(header: str) -> dict[str, list[str]]:
    policy = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            policy[words[0]] = words[1:]
    return policy


class InlineCodeFinder(HTMLParser):
    """Collects what a strict CSP would block (or what needs the nonce to run)."""

    def __init__(self, nonce: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.nonce = nonce
        self.problems: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag in {"script", "style"}:
            self.scripts += tag == "script"
            if self.nonce is None or values.get("nonce") != self.nonce:
                self.problems.append(f"<{tag}> without the response's nonce: {values}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler {name}= on <{tag}>")
            elif name == "style":
                self.problems.append(f"style= attribute on <{tag}>")
            elif name.startswith("hx-on"):
                self.problems.append(f"{name}= (htmx inline handler) on <{tag}>")
            elif (
                name in URL_ATTRIBUTES
                and value
                and re.sub(r"\s", "", value).lower().startswith("javascript:")
            ):
                self.problems.append(f"javascript: URL in {name}= on <{tag}>")

    handle_startendtag = handle_starttag


def inline_code_problems(response) -> list[str]:
    header = response.get("Content-Security-Policy", "")
    policy = parse_policy(header)
    if not header:
        return ["no Content-Security-Policy header"]
    nonces = [w for w in policy.get("script-src", []) if w.startswith("'nonce-")]
    # Without a nonce in the header (a page that never asked for one) no script may appear.
    nonce = nonces[0][len("'nonce-") : -1] if nonces else None
    finder = InlineCodeFinder(nonce)
    finder.feed(response.content.decode())
    return finder.problems


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


@pytest.mark.parametrize("role", ROLES)
def test_no_page_has_inline_code_for_any_role(make_operator, role):
    admin = make_operator("admin", username="csp-admin")
    world = build_world(admin)
    client = Client()
    client.force_login(make_operator(role))
    problems = {}
    html_pages = 0
    for route, name in _get_pages():
        path = world.path(route)
        for htmx in (False, True):
            headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": path} if htmx else {}
            response = client.get(path, **headers)
            if not response["Content-Type"].startswith("text/html"):
                continue
            if getattr(response, "streaming", False):
                continue
            html_pages += not htmx and response.status_code == 200
            found = inline_code_problems(response)
            if found:
                problems[(name, path, "htmx" if htmx else "page", response.status_code)] = found
    assert not problems
    assert html_pages >= 15  # the walk saw real pages, not just refusals
