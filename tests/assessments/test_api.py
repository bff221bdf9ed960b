"""SPEC §9 assessment endpoints: preview, assess / re-assess, list versions."""

import pytest

from assessments.models import RiskAssessment
from console import services as console_services
from tests.assessments.vectors import PROCUREMENT, VECTORS
from tests.helpers import client_for, events_of

PREVIEW = "/api/v1/assessments/preview"
ANSWERS = PROCUREMENT["answers"]


def assessments_url(agent) -> str:
    return f"/api/v1/agents/{agent.id}/assessments"


@pytest.fixture
def viewer(make_operator):
    return client_for(make_operator("viewer", username="vic"))


@pytest.fixture
def compliance(make_operator):
    return client_for(make_operator("compliance", username="carla"))


# --- preview --------------------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_preview_reproduces_every_vector(viewer, vector):
    response = viewer.post(PREVIEW, {"answers": vector["answers"]}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    expected = vector["expected"]
    for key in ("base_security", "ai_specific", "impact"):
        assert round(body[key], 4) == round(expected[key], 4)
    for key in ("risk_percent", "risk_profile_score", "initial_trust_score"):
        assert round(body[key], 2) == round(expected[key], 2), key
    assert body["risk_tier"] == expected["risk_tier"]


def test_preview_saves_nothing(api):
    api.post(PREVIEW, {"answers": ANSWERS}, format="json")
    assert not RiskAssessment.objects.exists()
    assert events_of("assessment.completed") == []


def test_preview_of_the_procurement_agent(api):
    body = api.post(PREVIEW, {"answers": ANSWERS}, format="json").json()
    assert body == {
        "base_security": 0.6667,
        "ai_specific": 0.76,
        "impact": 0.48,
        "risk_percent": 65.27,
        "risk_tier": 3,
        "risk_tier_label": "High",
        "risk_profile_score": 34.73,
        "initial_trust_score": 73.89,
        "initial_trust_tier": 3,
    }


def test_preview_names_every_bad_field(api):
    answers = dict(ANSWERS, attack_vector="internet", favourite_colour="blue")
    del answers["scope"]
    response = api.post(PREVIEW, {"answers": answers, "dry_run": True}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {
        "answers.attack_vector",
        "answers.favourite_colour",
        "answers.scope",
        "dry_run",
    }
    assert "physical, local, adjacent, network" in error["fields"]["answers.attack_vector"][0]
    assert "unchanged, changed" in error["fields"]["answers.scope"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "answers"), ({"answers": ["network"]}, "answers"), ({"answers": None}, "answers")],
)
def test_preview_without_an_answers_object_is_a_400(api, body, field):
    response = api.post(PREVIEW, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_preview_with_every_answer_missing_names_all_14(api):
    response = api.post(PREVIEW, {"answers": {}}, format="json")
    assert response.status_code == 400
    assert len(response.json()["error"]["fields"]) == 14


def test_preview_needs_an_operator(client):
    assert client.post(
        PREVIEW, {"answers": ANSWERS}, content_type="application/json"
    ).status_code in (
        401,
        403,
    )


# --- assess ---------------------------------------------------------------------------
def test_assess_creates_version_1_and_the_agent_shows_it(compliance, make_agent):
    agent = make_agent("procurement-agent", assessed=False)
    assert compliance.get(f"/api/v1/agents/{agent.id}").json()["assessed"] is False

    response = compliance.post(assessments_url(agent), {"answers": ANSWERS}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1
    assert (body["risk_percent"], body["risk_tier"], body["risk_profile_score"]) == (
        65.27,
        3,
        34.73,
    )
    assert (body["trust_score"], body["trust_tier"], body["effective_tier"]) == (73.89, 3, 3)
    assert body["assessed_by"] == "carla" and body["previous_version"] is None

    agent_doc = compliance.get(f"/api/v1/agents/{agent.id}").json()
    assert agent_doc["assessed"] is True
    assert (agent_doc["risk_percent"], agent_doc["risk_tier"], agent_doc["trust_score"]) == (
        65.27,
        3,
        73.89,
    )


def test_reassessment_without_reason_is_a_400_and_with_one_is_version_2(compliance, make_agent):
    agent = make_agent(assessed=False)
    compliance.post(assessments_url(agent), {"answers": ANSWERS}, format="json")
    changed = dict(ANSWERS, safety_impact="low")

    response = compliance.post(assessments_url(agent), {"answers": changed}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]

    response = compliance.post(
        assessments_url(agent),
        {"answers": changed, "reason": "it now drives the loading-dock robots"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["version"] == 2 and body["previous_version"] == 1
    assert body["changes"] == [{"parameter": "safety_impact", "from": "none", "to": "low"}]
    assert body["risk_percent"] == 66.92

    listing = compliance.get(assessments_url(agent)).json()["results"]
    assert [item["version"] for item in listing] == [2, 1]


def test_viewers_may_preview_and_list_but_not_assess(viewer, make_agent):
    agent = make_agent(assessed=False)
    assert viewer.get(assessments_url(agent)).status_code == 200
    response = viewer.post(assessments_url(agent), {"answers": ANSWERS}, format="json")
    assert response.status_code == 403
    assert not RiskAssessment.objects.exists()
    denied = events_of("access.denied")
    assert denied and denied[-1].payload["permission"] == "assess"


def test_assessing_a_revoked_agent_is_a_409(api, make_agent, admin_user):
    agent = make_agent(assessed=False)
    console_services.revoke_agent(agent, by=admin_user, reason="retired")
    response = api.post(assessments_url(agent), {"answers": ANSWERS}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agent_revoked"


def test_an_outdated_expected_version_is_a_409(api, make_agent):
    agent = make_agent(assessed=False)
    api.post(assessments_url(agent), {"answers": ANSWERS}, format="json")
    response = api.post(
        assessments_url(agent),
        {"answers": ANSWERS, "reason": "quarterly", "expected_version": 0},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "assessment_outdated"


def test_unknown_agent_is_a_404(api):
    for agent_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = api.post(
            f"/api/v1/agents/{agent_id}/assessments", {"answers": ANSWERS}, format="json"
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "agent_not_found"


def test_bad_assess_body_names_every_field(api, make_agent):
    agent = make_agent(assessed=False)
    response = api.post(
        assessments_url(agent),
        {"answers": dict(ANSWERS, scope="galaxy"), "reason": 5 * "x" * 1000, "why": "?"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"answers.scope", "reason", "why"}


def test_the_schema_documents_the_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/assessments/preview" in schema["paths"]
    assert "/api/v1/agents/{agent_id}/assessments" in schema["paths"]
