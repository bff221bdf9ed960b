"""The Monitor tab in a real browser: the server-rendered chart, ranges switched with
HTMX, Recalculate behind a confirmation, and no Content-Security-Policy violation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.liveserver import login, screenshot
from tests.trust import events as ev
from trust.models import TrustHistory

pytestmark = pytest.mark.browser


def test_the_trust_chart_and_recalculate(asgi_server, page, make_operator, admin_user):
    make_operator("admin", username="tess", password="pw-for-tess-123")
    start = timezone.now() - timedelta(days=20)
    agent = ev.register_assessed(admin_user, "procurement-bot", when=start)
    for day, severity in ((2, "major"), (5, "critical"), (6, "critical"), (9, "major")):
        with ev.at(start + timedelta(days=day)):
            session = ev.open_session(agent)
            ev.violation(agent, session, severity, name="contract.commit")
            ev.close_session(session, "ended")
    rows = TrustHistory.objects.filter(agent=agent).count()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    login(page, asgi_server, "tess", "pw-for-tess-123")

    page.goto(f"{asgi_server.url}/agents/{agent.id}/tab/monitor/")
    page.wait_for_selector("[data-testid='trust-chart']")
    assert page.locator("[data-testid='marker']").count() == rows
    titles = page.locator("[data-testid='marker'] title").all_text_contents()
    assert any("critical violation" in title for title in titles)
    page.locator("[data-testid='trust-chart']").scroll_into_view_if_needed()
    screenshot(page, "trust-monitor-30d")

    page.click("[data-testid='range-7d']")  # HTMX swaps the tab, the URL follows
    page.wait_for_url("**/tab/monitor/?range=7d")
    page.wait_for_selector("[data-testid='range-7d'].active")
    assert page.locator("[data-testid='marker']").count() < rows
    page.click("[data-testid='range-1y']")
    page.wait_for_selector("[data-testid='range-1y'].active")
    assert page.locator("[data-testid='marker']").count() == rows

    page.on("dialog", lambda dialog: dialog.accept())  # the confirmation
    page.click("[data-testid='recalculate']")
    page.wait_for_selector(".messages li:has-text('trust recalculated')")
    assert TrustHistory.objects.filter(agent=agent).latest("id").change_type == (
        "manual_recalculation"
    )
    screenshot(page, "trust-monitor-recalculated")

    page.goto(asgi_server.url + "/")
    page.wait_for_selector("[data-testid='trust-movers'] :text('procurement-bot')")
    screenshot(page, "dashboard-trust")
    assert not problems, problems
