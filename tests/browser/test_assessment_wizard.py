"""A compliance officer assesses the procurement agent in a real browser (SPEC §2, §8;
shared/scenarios/procurement_drift.md), then re-assesses it with one change."""

import pytest

from assessments import scoring
from assessments.models import RiskAssessment
from console.models import Agent
from tests.assessments.vectors import PROCUREMENT
from tests.liveserver import login, screenshot

pytestmark = pytest.mark.browser

ANSWERS = PROCUREMENT["answers"]
STEP_KEYS = [
    [p.key for p in category.parameters] for category in scoring.CATEGORIES
]  # base security, AI-specific, impact


def answer(page, keys, answers):
    for key in keys:
        page.check(f"[data-testid='{key}-{answers[key]}']")


def test_assess_then_reassess_the_procurement_agent(asgi_server, page, make_operator, make_agent):
    make_operator("compliance", username="carla", password="pw-for-carla-123")
    agent = make_agent("procurement-agent", assessed=False, description="Reviews invoices")
    login(page, asgi_server, "carla", "pw-for-carla-123")

    page.goto(f"{asgi_server.url}/agents/{agent.id}/tab/assess/")
    page.wait_for_selector("[data-testid='not-assessed']")
    page.click("[data-testid='assess-button']")

    # Step 1. Leaving it with unanswered questions names them.
    page.wait_for_selector("[data-testid='question-attack_vector']")
    page.check("[data-testid='attack_vector-network']")
    page.click("[data-testid='wizard-next']")
    summary = page.locator("[data-testid='missing-summary']")
    summary.wait_for()
    for title in ("Attack complexity", "Privileges required", "User interaction", "Scope"):
        assert title in summary.inner_text()
    assert page.is_checked("[data-testid='attack_vector-network']")  # kept

    answer(page, STEP_KEYS[0], ANSWERS)
    # The live panel (HTMX) shows the sub-score as soon as the category is complete.
    page.wait_for_selector("[data-testid='sub-base_security']:has-text('0.6667')")
    page.click("[data-testid='wizard-next']")

    answer(page, STEP_KEYS[1], ANSWERS)
    page.wait_for_selector("[data-testid='sub-ai_specific']:has-text('0.7600')")
    # Back and forward again: the answers survive the round trip.
    page.click("[data-testid='wizard-back']")
    page.wait_for_selector("[data-testid='question-attack_vector']")
    assert page.is_checked("[data-testid='scope-unchanged']")
    page.click("[data-testid='wizard-next']")
    assert page.is_checked("[data-testid='decision_criticality-very_high']")
    page.click("[data-testid='wizard-next']")

    answer(page, STEP_KEYS[2], ANSWERS)
    page.wait_for_selector("[data-testid='live-risk']:has-text('65.27%')")
    assert "Tier 3" in page.inner_text("[data-testid='live-tier']")
    assert "73.89" in page.inner_text("[data-testid='live-trust']")
    screenshot(page, "assessment-step-impact")
    page.click("[data-testid='wizard-next']")

    # Review: 65.27 %, tier 3 and what the tier means.
    page.wait_for_selector("[data-testid='review-risk']")
    assert page.inner_text("[data-testid='review-risk']").strip() == "65.27%"
    assert "Tier 3 · High" in page.inner_text("[data-testid='review-tier']")
    assert "critical actions" in page.inner_text("[data-testid='tier-meaning-current']")
    screenshot(page, "assessment-review")
    page.click("[data-testid='wizard-save']")

    page.locator("[data-testid='version-1']").scroll_into_view_if_needed()
    assert "Tier 3 · High" in page.inner_text("[data-testid='current-profile']")
    screenshot(page, "assessment-tab-v1")
    current = Agent.objects.get(pk=agent.pk)
    assert (str(current.risk_percent), current.risk_tier, str(current.trust_score)) == (
        "65.27",
        3,
        "73.89",
    )

    # Re-assess with one change: the wizard starts from version 1's answers.
    page.click("[data-testid='assess-button']")
    page.wait_for_selector("[data-testid='question-attack_vector']")
    assert page.is_checked("[data-testid='attack_vector-network']")
    page.click("[data-testid='step-impact']")
    page.wait_for_selector("[data-testid='question-safety_impact']")
    page.check("[data-testid='safety_impact-low']")
    expected = scoring.score(dict(ANSWERS, safety_impact="low")).risk_percent
    page.wait_for_selector(f"[data-testid='live-risk']:has-text('{expected}%')")
    page.click("[data-testid='wizard-next']")

    diff = page.locator("[data-testid='review-diff']")
    diff.wait_for()
    assert "Changes against version 1" in diff.inner_text()
    assert "Safety impact" in diff.inner_text()
    assert "65.27%" in diff.inner_text() and f"{expected}%" in diff.inner_text()
    page.fill("#id_reason", "now also schedules the loading-dock robots")
    page.click("[data-testid='wizard-save']")

    version_2 = page.locator("[data-testid='version-2']")
    version_2.wait_for()
    assert "current" in version_2.inner_text()
    assert "Safety impact" in page.inner_text("[data-testid='diff-2']")
    assert "loading-dock robots" in version_2.inner_text()
    version_2.scroll_into_view_if_needed()
    screenshot(page, "assessment-tab-v2")
    assert list(
        RiskAssessment.objects.filter(agent=agent)
        .order_by("version")
        .values_list("version", flat=True)
    ) == [1, 2]
