"""An operator writes a Rego policy in a real browser (SPEC §3.2, §8): a syntax error is
shown with its line, the fixed module is tested against an input document, the policy is
saved as a draft, set to shadow, and backtested against an agent's recorded actions."""

import time
from decimal import Decimal

import pytest

from console import services
from console.authorize import services as authz
from console.authorize.models import Policy
from tests.liveserver import login, screenshot

pytestmark = pytest.mark.browser

BROKEN = """package warden.spend_limit

import rego.v1

default verdict := "allow"

verdict := "require_approval" if {
	input.action.amount >
}
"""
FIXED = """package warden.spend_limit

import rego.v1

default verdict := "allow"

verdict := "require_approval" if {
	is_number(input.action.amount)
	input.action.amount > 100000
}

reason := "over USD 100,000: a person decides" if verdict == "require_approval"
"""


def test_write_test_shadow_and_backtest_a_policy(asgi_server, page, make_operator, make_agent):
    make_operator("admin", username="pat", password="pw-for-pat-123")
    agent = make_agent("procurement-bot")
    session = services.open_session(agent, goal="invoices")
    for amount in ("50000", "150000", "200000", None):
        authz.evaluate_action(
            agent,
            session,
            name="contract.commit" if amount else "invoice.read",
            target="vendor:acme",
            amount=Decimal(amount) if amount else None,
            currency="USD" if amount else None,
        )
    login(page, asgi_server, "pat", "pw-for-pat-123")

    # 1. A syntax error: Check names the line, in place, and marks it in the gutter.
    page.goto(asgi_server.url + "/policies/")
    page.click("[data-testid='new-policy']")
    page.fill("#id_name", "spend-limit")
    page.fill("#id_module", BROKEN)
    page.click("[data-testid='check-module']")
    problem = page.wait_for_selector("[data-testid='check-result'] .problems li")
    assert problem.inner_text().startswith("line 8, column")
    page.wait_for_selector(".gutter span.error-line:has-text('8')")
    screenshot(page, "policy-editor-syntax-error")

    # 2. Fixed: it compiles; test it against a loaded input document.
    page.fill("#id_module", FIXED)
    page.click("[data-testid='check-module']")
    page.wait_for_selector("[data-testid='check-result'] .check-ok")
    assert page.locator(".gutter span.error-line").count() == 0
    page.select_option("#id_sample_template", "big-commit")
    page.click("[data-testid='load-input']")
    # Poll from Python: the strict CSP forbids the page-side eval wait_for_function uses.
    deadline = time.monotonic() + 10
    while "250000" not in page.input_value("#id_input"):
        assert time.monotonic() < deadline, "the input document was not loaded"
        page.wait_for_timeout(50)
    page.click("[data-testid='test-policy']")
    verdict = page.wait_for_selector("[data-testid='test-verdict']")
    assert verdict.inner_text() == "REQUIRE_APPROVAL"
    assert "a person decides" in page.inner_text("[data-testid='test-reason']")
    screenshot(page, "policy-editor-test-verdict")

    # 3. Save it as a draft (disabled), then set it to shadow from its page.
    page.select_option("#id_mode", "disabled")
    page.click("[data-testid='save-policy']")
    page.wait_for_selector("[data-testid='mode-spend-limit']:has-text('disabled')")
    policy = Policy.objects.get(name="spend-limit")
    page.click("[data-testid='set-shadow-spend-limit']")
    page.wait_for_selector("#modal[open] [data-testid='confirm-mode']")
    page.fill("#modal-body #id_reason", "watch it for a week")
    page.click("[data-testid='confirm-mode']")
    page.wait_for_selector("#policy-header [data-testid='mode-spend-limit']:has-text('shadow')")
    policy.refresh_from_db()
    assert policy.mode == "shadow" and policy.version == 2
    page.wait_for_selector("#modal", state="hidden")
    screenshot(page, "policy-detail-shadow")

    # 4. Backtest it against the agent's recorded actions.
    page.click("[data-testid='backtest-policy']")
    page.select_option("#id_backtest_agent", str(agent.id))
    page.click("[data-testid='run-backtest']")
    page.wait_for_selector("[data-testid='backtest-result']")
    assert "4 actions replayed" in page.inner_text("[data-testid='backtest-result'] h2")
    assert page.inner_text("[data-testid='count-REQUIRE_APPROVAL'] strong") == "2"
    assert page.inner_text("[data-testid='count-ALLOW'] strong") == "2"
    assert (
        page.locator("[data-testid='actions-REQUIRE_APPROVAL'] [data-testid='event-link']").count()
        == 2
    )
    screenshot(page, "policy-backtest")

    # The list and the agent's Authorize tab show it in shadow mode.
    page.goto(asgi_server.url + "/policies/")
    page.wait_for_selector("[data-testid='mode-spend-limit']:has-text('shadow')")
    screenshot(page, "policies-list")
    page.goto(asgi_server.url + f"/agents/{agent.id}/tab/authorize/")
    page.wait_for_selector("[data-testid='verdict-mix'] svg")
    screenshot(page, "agent-authorize-tab")


def test_the_rule_form_shows_the_fields_of_its_kind(asgi_server, page, make_operator):
    make_operator("admin", username="pat", password="pw-for-pat-123")
    login(page, asgi_server, "pat", "pw-for-pat-123")
    page.goto(asgi_server.url + "/policies/rules/new/")
    then_pattern, threshold = page.locator("#id_then_pattern"), page.locator("#id_threshold")
    assert not then_pattern.is_visible() and threshold.is_visible()  # rate by default
    page.select_option("#id_kind", "sequence")
    assert then_pattern.is_visible() and not threshold.is_visible()
    page.select_option("#id_kind", "rate")
    page.fill("#id_name", "contract-burst")
    page.fill("#id_pattern", "contract.commit")
    page.fill("#id_window_value", "24")
    page.fill("#id_threshold", "three")
    page.click("[data-testid='save-rule']")
    error = page.wait_for_selector("#id_threshold ~ .field-error")
    assert "non-negative integer count" in error.inner_text()
    screenshot(page, "rule-form-field-error")
    page.fill("#id_threshold", "3")
    page.click("[data-testid='save-rule']")
    page.wait_for_selector("[data-testid='rule-row-contract-burst']")
    assert "more than 3 × contract.commit within 24 h" in page.inner_text(
        "[data-testid='rule-row-contract-burst']"
    )
