"""On-call contains an agent from the list in a real browser (SPEC §1, §8)."""

import pytest

from console.models import Agent
from tests.liveserver import login, screenshot

pytestmark = pytest.mark.browser


def test_pause_resume_and_revoke_from_the_agent_list(asgi_server, page, make_operator, make_agent):
    make_operator("oncall", username="ona", password="pw-for-ona-123")
    agent = make_agent("procurement-bot")
    login(page, asgi_server, "ona", "pw-for-ona-123")

    page.goto(asgi_server.url + "/agents/")
    screenshot(page, "agents-list")
    page.click("[data-testid='pause-procurement-bot']")
    page.fill("#modal-body #id_reason", "drifting into contract commits")
    page.click("[data-testid='confirm-pause']")
    # The row updates in place (HTMX), no reload.
    page.wait_for_selector("[data-testid='status-procurement-bot']:has-text('Paused')")
    assert Agent.objects.get(pk=agent.pk).status == "paused"

    page.click("[data-testid='resume-procurement-bot']")
    page.fill("#modal-body #id_reason", "false alarm")
    page.click("[data-testid='confirm-resume']")
    page.wait_for_selector("[data-testid='status-procurement-bot']:has-text('Active')")

    page.click("[data-testid='revoke-procurement-bot']")
    page.fill("#modal-body #id_reason", "confirmed rogue")
    page.fill("#modal-body #id_confirm_name", "procurement")  # wrong name: refused
    page.click("[data-testid='confirm-revoke']")
    page.wait_for_selector("#modal-body .field-error")
    assert Agent.objects.get(pk=agent.pk).status == "active"
    page.fill("#modal-body #id_confirm_name", "procurement-bot")
    page.click("[data-testid='confirm-revoke']")
    page.wait_for_selector("[data-testid='status-procurement-bot']:has-text('Revoked')")
    screenshot(page, "agents-list-revoked")
    assert Agent.objects.get(pk=agent.pk).status == "revoked"
    # A revoked agent offers no way back.
    assert page.locator("[data-testid='resume-procurement-bot']").count() == 0
