"""The registry API (SPEC §9): registering, reading and changing agents, with bad input."""

import pytest

from console.models import Agent
from tests.helpers import client_for, events_of


def test_register_agent_returns_the_full_document(api, admin_user):
    response = api.post(
        "/api/v1/agents",
        {
            "name": "procurement",
            "description": "reviews invoices",
            "scope": {"allowed_actions": ["invoice.*"], "excluded_actions": ["payment.*"]},
            "settings": {
                "fail_mode": "open",
                "budgets": {"max_actions_per_session": 50, "max_spend_per_day": 1000},
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "procurement" and body["owner"] == admin_user.username
    assert body["status"] == "active" and body["assessed"] is False and body["risk_tier"] is None
    assert body["scope"]["allowed_actions"] == ["invoice.*"]
    assert body["scope"]["allowed_targets"] is None  # omitted = no restriction
    assert body["settings"] == {
        "fail_mode": "open",
        "pause_on_halt": None,
        "approval_ttl_seconds": 1800,
        "budgets": {
            "max_actions_per_session": 50,
            "max_spend_per_session": None,
            "max_spend_per_day": "1000.00",
            "max_session_seconds": None,
            "max_depth": None,
        },
    }
    assert set(body) >= {
        "behavioral",
        "alignment",
        "trust_score",
        "trust_tier",
        "effective_tier",
        "created_at",
    }
    (event,) = events_of("agent.registered")
    assert event.actor == f"user:{admin_user.username}" and str(event.agent_id) == body["id"]


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x" * 101}, {"name"}),
        ({"name": "a", "colour": "red"}, {"colour"}),
        ({"name": "a", "scope": {"allowed_actions": "invoice.*"}}, {"scope.allowed_actions"}),
        ({"name": "a", "scope": {"forbidden": []}}, {"scope.forbidden"}),
        ({"name": "a", "scope": ["x"]}, {"scope"}),
        ({"name": "a", "settings": {"fail_mode": "sideways"}}, {"settings.fail_mode"}),
        (
            {"name": "a", "settings": {"approval_ttl_seconds": 59}},
            {"settings.approval_ttl_seconds"},
        ),
        (
            {"name": "a", "settings": {"approval_ttl_seconds": 7 * 86400 + 1}},
            {"settings.approval_ttl_seconds"},
        ),
        (
            {"name": "a", "settings": {"budgets": {"max_depth": -1, "max_spend_per_day": "lots"}}},
            {"settings.budgets.max_depth", "settings.budgets.max_spend_per_day"},
        ),
        (
            {"name": "a", "settings": {"budgets": {"max_widgets": 1}}},
            {"settings.budgets.max_widgets"},
        ),
        ({"name": "a", "settings": {"pause_on_halt": "yes"}}, {"settings.pause_on_halt"}),
    ],
)
def test_bad_registrations_name_every_bad_field(api, payload, fields):
    response = api.post("/api/v1/agents", payload, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == fields
    assert not Agent.objects.exists()


def test_duplicate_name_is_a_conflict(api):
    assert api.post("/api/v1/agents", {"name": "dup"}, format="json").status_code == 201
    response = api.post("/api/v1/agents", {"name": "dup"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "name_taken"
    assert response.json()["error"]["fields"] == {
        "name": ["An agent with this name already exists."]
    }


def test_malformed_json_is_a_400(api):
    response = api.generic("POST", "/api/v1/agents", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_non_json_body_is_a_415(api):
    response = api.generic(
        "POST", "/api/v1/agents", "name=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_list_and_get(api, make_agent):
    agent = make_agent("one")
    make_agent("two")
    listing = api.get("/api/v1/agents").json()["results"]
    assert [a["name"] for a in listing] == ["one", "two"]
    assert api.get(f"/api/v1/agents/{agent.id}").json()["risk_tier"] == 2
    assert api.get("/api/v1/agents?status=bogus").status_code == 400


@pytest.mark.parametrize("agent_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_agent_is_404(api, agent_id):
    response = api.get(f"/api/v1/agents/{agent_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "agent_not_found"


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_patch_changes_settings_with_a_reason_and_records_the_diff(api, make_agent, make_operator):
    agent = make_agent("tunable")
    newowner = make_operator("viewer", username="newowner")
    response = api.patch(
        f"/api/v1/agents/{agent.id}",
        {"reason": "tighten", "settings": {"approval_ttl_seconds": 600}, "owner": "newowner"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["settings"]["approval_ttl_seconds"] == 600
    assert response.json()["settings"]["fail_mode"] == "closed"  # untouched settings stay
    assert response.json()["owner"] == newowner.username
    (event,) = events_of("agent.updated")
    assert event.reason == "tighten"
    assert event.payload["changes"]["settings"]["to"]["approval_ttl_seconds"] == 600
    assert (
        api.patch(f"/api/v1/agents/{agent.id}", {"description": "x"}, format="json").status_code
        == 400
    )
    assert (
        api.patch(
            f"/api/v1/agents/{agent.id}", {"reason": "r", "owner": "ghost"}, format="json"
        ).status_code
        == 400
    )


def test_only_admin_and_compliance_register(make_operator):
    for role, status in [
        ("viewer", 403),
        ("reviewer", 403),
        ("oncall", 403),
        ("compliance", 201),
        ("admin", 201),
    ]:
        client = client_for(make_operator(role))
        response = client.post("/api/v1/agents", {"name": f"by-{role}"}, format="json")
        assert response.status_code == status, role
    denied = events_of("access.denied")
    assert len(denied) == 3 and all(e.result == "denied" for e in denied)
    assert denied[0].payload["permission"] == "register_agent"


def test_anonymous_requests_are_refused(client):
    response = client.get("/api/v1/agents")
    assert response.status_code in (401, 403)
    assert "error" in response.json()
