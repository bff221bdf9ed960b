"""The console's main pages in Chromium under the real CSP: no policy violations.

A ``securitypolicyviolation`` listener is installed before any page script runs; each
main page is opened (as an admin, with real objects) and left to run its scripts, HTMX
loads and websocket; then the recorded violations, and the console's CSP messages, must
be none. A deliberately injected inline script shows the listener works.
"""

from __future__ import annotations

import pytest

from tests.approvals.helpers import in_thread_of_its_own
from tests.liveserver import login
from tests.security.world import build_world

pytestmark = pytest.mark.browser

LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push({directive: e.violatedDirective, blocked: e.blockedURI,
                     source: e.sourceFile, line: e.lineNumber, sample: e.sample});
});
"""
PAGES = [
    "/",
    "/agents/",
    "/agents/{agent_id}/",
    "/agents/{agent_id}/tab/assess/",
    "/agents/{agent_id}/tab/authorize/",
    "/agents/{agent_id}/tab/monitor/",
    "/agents/{agent_id}/tab/verify/",
    "/agents/{agent_id}/tab/adapt/",
    "/agents/{agent_id}/assess/",
    "/agents/new/",
    "/approvals/",
    "/audit/",
    "/audit/events/{event_id}/",
    "/audit/sessions/{session_id}/",
    "/audit/incident/",
    "/audit/exports/{export_id}/",
    "/policies/",
    "/policies/{policy_id}/",
    "/policies/new/",
    "/policies/rules/new/",
    "/policies/rules/{rule_id}/edit/",
    "/policies/guardrails/{guardrail_id}/edit/",
    "/settings/",
    "/api/docs/",
]


def test_main_pages_raise_no_csp_violations(asgi_server, page, make_operator):
    admin = make_operator("admin", username="csp-browser", password="pw-for-csp-12345")
    world = in_thread_of_its_own(build_world, admin)
    console_messages = []
    page.on(
        "console",
        lambda m: console_messages.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(LISTENER)
    login(page, asgi_server, "csp-browser", "pw-for-csp-12345")
    violations = {}
    for template in PAGES:
        path = template.format(**world.ids)
        response = page.goto(asgi_server.url + path)
        assert response is not None and response.status == 200, (path, response)
        assert "'nonce-" in response.headers["content-security-policy"], path
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # deferred scripts, HTMX loads, the live socket
        found = page.evaluate("window.__csp")
        if found:
            violations[path] = found
    if "/api/docs/" in PAGES:
        page.wait_for_selector(".swagger-ui .info", timeout=10_000)  # Swagger UI did run
    assert not violations
    assert not console_messages

    # The listener is live: an inline script without the nonce is refused and reported.
    page.goto(asgi_server.url + "/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.x") is None
    assert [v["directive"] for v in page.evaluate("window.__csp")] == ["script-src-elem"]
