"""The pages a newcomer sees first, with the demo's own data (``bootstrap_demo``: its long
policy, rule and guardrail names, canaries, keys and operators), fit the window: a table
wider than the page hides the buttons at the end of its rows."""

from __future__ import annotations

import os
from io import StringIO

import pytest
from django.core.management import call_command

from console.models import Agent
from tests.approvals.helpers import in_thread_of_its_own
from tests.liveserver import SCREENSHOTS, login

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/agents/",
    "/approvals/",
    "/audit/",
    "/policies/",
    "/settings/",
    "/account/password/",
]


@pytest.mark.parametrize("width", [1280, 1024])
def test_the_demo_pages_fit_the_window(asgi_server, browser, tmp_path, width):
    out = StringIO()
    in_thread_of_its_own(  # Playwright keeps an event loop in this thread
        call_command,
        "bootstrap_demo",
        keys_file=str(tmp_path / "keys.json"),
        logins_file=str(tmp_path / "logins.txt"),
        stdout=out,
    )
    password = dict(line.split(" / ") for line in out.getvalue().strip().splitlines())["admin"]
    agent = Agent.objects.get(name="procurement-agent")
    os.makedirs(SCREENSHOTS, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        login(page, asgi_server, "admin", password)
        pages = [
            *PAGES,
            f"/agents/{agent.id}/",
            "/settings/operators/reviewer/",
            "/settings/new-operator/",
        ]
        for path in pages:
            response = page.goto(asgi_server.url + path)
            assert response is not None and response.status == 200, path
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px window"
            name = path.strip("/").replace(str(agent.id), "detail").replace("/", "-")
            page.screenshot(
                path=os.path.join(SCREENSHOTS, f"demo-{width}-{name or 'dashboard'}.png")
            )
    finally:
        context.close()
