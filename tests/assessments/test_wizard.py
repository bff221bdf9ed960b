"""The assessment wizard and the Assess tab without JavaScript (SPEC §2, §8)."""

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from assessments import scoring
from assessments.models import RiskAssessment
from assessments.services import assess_agent
from console import services as console_services
from tests.assessments.vectors import PROCUREMENT

ANSWERS = PROCUREMENT["answers"]
BASE_KEYS = [p.key for p in scoring.CATEGORY_BY_KEY["base_security"].parameters]
AI_KEYS = [p.key for p in scoring.CATEGORY_BY_KEY["ai_specific"].parameters]


def only(keys):
    return {key: ANSWERS[key] for key in keys}


@pytest.fixture
def carla(make_operator):
    return make_operator("compliance", username="carla")


@pytest.fixture
def browser(carla):
    client = Client()
    client.force_login(carla)
    return client


@pytest.fixture
def agent(make_agent):
    return make_agent("procurement-agent", assessed=False)


def step_url(agent, step, answers=None):
    url = f"/agents/{agent.id}/assess/{step}/"
    return f"{url}?{urlencode(answers)}" if answers else url


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_start_opens_the_first_step_empty_for_a_new_agent(browser, agent):
    response = browser.get(f"/agents/{agent.id}/assess/")
    assert response.status_code == 302
    assert response["Location"] == step_url(agent, "base-security")


def test_start_prefills_the_current_answers_for_a_reassessment(browser, agent, carla):
    assess_agent(agent, answers=ANSWERS, by=carla)
    location = browser.get(f"/agents/{agent.id}/assess/")["Location"]
    assert urlsplit(location).path == step_url(agent, "base-security")
    assert {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()} == ANSWERS


@pytest.mark.parametrize(
    ("step", "category"),
    [("base-security", "base_security"), ("ai-specific", "ai_specific"), ("impact", "impact")],
)
def test_each_step_explains_every_option_with_an_example(browser, agent, step, category):
    response = browser.get(step_url(agent, step))
    assert response.status_code == 200
    page = response.content.decode()
    for parameter in scoring.CATEGORY_BY_KEY[category].parameters:
        assert f'name="{parameter.key}"' in page
        for option in parameter.options:
            assert f'value="{option.key}"' in page
            assert option.explanation.replace("'", "&#x27;") in page
            assert option.example.replace("'", "&#x27;") in page


def test_pages_have_no_inline_scripts_or_styles(browser, agent, carla):
    pages = [step_url(agent, "base-security"), step_url(agent, "review", ANSWERS)]
    assess_agent(agent, answers=ANSWERS, by=carla)
    pages.append(f"/agents/{agent.id}/tab/assess/")
    for url in pages:
        page = browser.get(url).content.decode()
        assert "style=" not in page, url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), url
        assert not re.search(r"<[^>]+\son[a-z]+=", page), url  # no inline handlers


def test_next_with_unanswered_questions_names_each_of_them(browser, agent):
    response = browser.post(
        step_url(agent, "base-security"), {"go": "ai-specific", "attack_vector": "network"}
    )
    assert response.status_code == 400
    page = text(response)
    assert "Answer every question before moving on." in page
    for title in ("Attack complexity", "Privileges required", "User interaction", "Scope"):
        assert f"{title} : Choose one option before moving on." in page
    assert "Attack vector :" not in page
    # The given answer is kept.
    assert 'value="network" checked' in response.content.decode()


def test_next_with_a_complete_step_goes_on_carrying_every_answer(browser, agent):
    response = browser.post(
        step_url(agent, "base-security"), {"go": "ai-specific", **only(BASE_KEYS)}
    )
    assert response.status_code == 302
    assert response["Location"] == step_url(agent, "ai-specific", only(BASE_KEYS))
    page = browser.get(response["Location"]).content.decode()
    for key in BASE_KEYS:  # carried as hidden inputs on the next step
        assert f'<input type="hidden" name="{key}" value="{ANSWERS[key]}">' in page


def test_back_never_blocks_and_keeps_partial_answers(browser, agent):
    answers = {**only(BASE_KEYS), "model_robustness": "medium"}
    response = browser.post(step_url(agent, "ai-specific"), {"go": "base-security", **answers})
    assert response.status_code == 302
    assert response["Location"] == step_url(agent, "base-security", answers)
    page = browser.get(response["Location"]).content.decode()
    assert 'value="network" checked' in page
    assert '<input type="hidden" name="model_robustness" value="medium">' in page


def test_an_unknown_option_in_the_address_is_reported(browser, agent):
    response = browser.get(step_url(agent, "base-security", {"attack_vector": "moon"}))
    assert "&#x27;moon&#x27; is not an option" in response.content.decode()


def test_live_panel_shows_subscores_as_categories_complete(browser, agent):
    panel = browser.post(f"/agents/{agent.id}/assess/panel/", only(BASE_KEYS))
    assert panel.status_code == 200
    page = text(panel)
    assert "Base Security 25% 0.6667" in page
    assert "0/5 answered" in page and "0/4 answered" in page
    assert "9 questions left" in page


def test_live_panel_shows_risk_tier_and_predicted_trust_when_complete(browser, agent):
    page = text(browser.post(f"/agents/{agent.id}/assess/panel/", ANSWERS))
    assert "65.27%" in page
    assert "Tier 3 · High" in page
    assert "Predicted starting trust 73.89" in page


def test_review_shows_the_result_and_the_meaning_of_the_tier(browser, agent):
    response = browser.get(step_url(agent, "review", ANSWERS))
    assert response.status_code == 200
    page = text(response)
    assert "65.27%" in page and "Tier 3 · High" in page
    assert "Personal or financial data, critical actions." in page
    assert "Starting trust 73.89" in page
    assert "Save as version 1" in page


def test_review_lists_unanswered_questions_and_refuses_to_save(browser, agent):
    partial = {k: v for k, v in ANSWERS.items() if k != "safety_impact"}
    page = text(browser.get(step_url(agent, "review", partial)))
    assert "1 question still unanswered." in page and "Impact · Safety impact" in page
    response = browser.post(step_url(agent, "review"), {**partial, "go": "save"})
    assert response.status_code == 400
    assert not RiskAssessment.objects.exists()


def test_saving_creates_version_1_and_the_tab_lists_it(browser, agent):
    response = browser.post(
        step_url(agent, "review"), {**ANSWERS, "go": "save", "expected_version": "0"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.id}/tab/assess/"
    assessment = RiskAssessment.objects.get(agent=agent)
    assert (assessment.version, assessment.risk_percent) == (1, scoring.score(ANSWERS).risk_percent)
    page = text(browser.get(response["Location"]))
    assert "assessment version 1 saved" in page
    assert "Version 1 current" in page
    assert "Re-assess" in page


def test_reassessment_review_shows_the_diff_and_needs_a_reason(browser, agent, carla):
    assess_agent(agent, answers=ANSWERS, by=carla)
    changed = dict(ANSWERS, safety_impact="low")
    page = text(browser.get(step_url(agent, "review", changed)))
    assert "Changes against version 1" in page
    assert "Impact · Safety impact None Low" in page
    assert "Risk percent 65.27% 66.92%" in page
    assert "Save as version 2" in page

    refused = browser.post(
        step_url(agent, "review"), {**changed, "go": "save", "expected_version": "1"}
    )
    assert refused.status_code == 400
    assert "This field is required." in text(refused)
    saved = browser.post(
        step_url(agent, "review"),
        {**changed, "go": "save", "expected_version": "1", "reason": "now moves goods"},
    )
    assert saved.status_code == 302
    tab = text(browser.get(saved["Location"]))
    assert "Version 2 current" in tab
    assert "Changed against version 1 Before After Impact · Safety impact None Low" in tab
    assert "Reason: now moves goods" in tab


def test_saving_over_a_newer_version_is_refused(browser, agent, carla):
    assess_agent(agent, answers=ANSWERS, by=carla)
    response = browser.post(
        step_url(agent, "review"), {**ANSWERS, "go": "save", "expected_version": "0"}
    )
    assert response.status_code == 409
    assert "Version 1 was saved since you started" in text(response)
    assert RiskAssessment.objects.filter(agent=agent).count() == 1


def test_viewers_cannot_open_the_wizard_and_see_no_assess_button(make_operator, agent):
    viewer = Client()
    viewer.force_login(make_operator("viewer", username="vic"))
    assert viewer.get(step_url(agent, "base-security")).status_code == 403
    assert viewer.post(f"/agents/{agent.id}/assess/panel/", ANSWERS).status_code == 403
    tab = viewer.get(f"/agents/{agent.id}/tab/assess/").content.decode()
    assert 'data-testid="assess-button"' not in tab
    assert "Not assessed" in tab


def test_a_revoked_agent_cannot_be_assessed_from_the_console(browser, agent, admin_user):
    console_services.revoke_agent(agent, by=admin_user, reason="retired")
    response = browser.get(step_url(agent, "base-security"))
    assert response.status_code == 302
    page = text(browser.get(response["Location"]))
    assert "a revoked agent cannot be assessed" in page
    assert 'data-testid="assess-button"' not in browser.get(response["Location"]).content.decode()


def test_unknown_step_is_a_404(browser, agent):
    assert browser.get(step_url(agent, "summary")).status_code == 404


def test_a_never_assessed_agent_says_not_assessed_everywhere(browser, agent):
    for url in ("/", "/agents/", f"/agents/{agent.id}/", f"/agents/{agent.id}/tab/assess/"):
        response = browser.get(url)
        assert response.status_code == 200, url
        assert "Not assessed" in response.content.decode(), url
    assert "cannot open sessions" in text(browser.get(f"/agents/{agent.id}/tab/assess/"))
