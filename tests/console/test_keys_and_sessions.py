"""API keys (SPEC §1) and the agent-facing session endpoints (SPEC §9)."""

import pytest

from console import credentials, services
from console.models import ApiKey, OperatorToken
from tests.helpers import agent_client, client_for, events_of


def test_issued_key_has_the_documented_shape_and_is_only_hashed_at_rest(api, make_agent):
    agent = make_agent()
    response = api.post(f"/api/v1/agents/{agent.id}/keys", {"label": "prod"}, format="json")
    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert key.startswith(f"wdn_live_{body['prefix']}_") and len(key.split("_", 3)[3]) >= 32
    stored = ApiKey.objects.get(pk=body["id"])
    assert key not in {stored.key_hash, stored.prefix, stored.label}
    assert stored.key_hash == credentials.key_hash(key) and len(stored.key_hash) == 64
    listing = api.get(f"/api/v1/agents/{agent.id}/keys").json()
    assert listing[0]["prefix"] == body["prefix"] and "key" not in listing[0]
    (event,) = events_of("key.issued")
    assert key not in event.payload_json


def test_revoked_key_is_refused_on_the_very_next_request(api, agent_with_key):
    agent, key = agent_with_key
    bot = agent_client(key)
    assert bot.post("/api/v1/sessions", {}, format="json").status_code == 201
    key_id = ApiKey.objects.get(agent=agent).id
    assert (
        api.delete(
            f"/api/v1/agents/{agent.id}/keys/{key_id}", {"reason": "rotated"}, format="json"
        ).status_code
        == 200
    )
    response = bot.post("/api/v1/sessions", {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "key_revoked"
    (event,) = events_of("key.revoked")
    assert event.reason == "rotated"
    assert api.delete(f"/api/v1/agents/{agent.id}/keys/{key_id}", format="json").status_code == 409


def test_rotation_new_key_works_old_key_does_not(admin_user, agent_with_key):
    agent, old = agent_with_key
    _, new = services.issue_key(agent, by=admin_user)
    services.revoke_key(
        ApiKey.objects.get(agent=agent, prefix=old.split("_")[2]), by=admin_user, reason="rotate"
    )
    assert agent_client(new).post("/api/v1/sessions", {}, format="json").status_code == 201
    assert agent_client(old).post("/api/v1/sessions", {}, format="json").status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wdn_live_abcdefgh_" + "x" * 40,  # well-formed, unknown
        "Bearer wdn_live_short",
        "Bearer something-else",
        "Bearer wdn_live_ABCDEFGH_" + "x" * 40,
    ],
)
def test_bad_keys_are_401(db, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post("/api/v1/sessions", {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_key"


def test_a_key_with_the_right_prefix_but_wrong_secret_is_refused(agent_with_key):
    _, key = agent_with_key
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert agent_client(forged).post("/api/v1/sessions", {}, format="json").status_code == 401


def test_missing_credentials_on_agent_endpoints_is_401(client, db):
    response = client.post("/api/v1/sessions", {}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_operators_cannot_use_agent_endpoints(api):
    assert api.post("/api/v1/sessions", {}, format="json").status_code in (401, 403)


def test_agents_cannot_use_operator_endpoints(agent_with_key):
    _, key = agent_with_key
    bot = agent_client(key)
    assert bot.get("/api/v1/agents").status_code in (401, 403)


def test_open_session_returns_ids_and_records_the_event(agent_with_key):
    agent, key = agent_with_key
    response = agent_client(key).post(
        "/api/v1/sessions", {"workflow_id": "wf-1", "goal": "review invoices"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    (event,) = events_of("session.started")
    assert str(event.session_id) == body["session_id"] and str(event.run_id) == body["run_id"]
    assert event.workflow_id == "wf-1" and event.actor == f"agent:{agent.id}"
    assert event.payload["session_event"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"goal": 5}, None),
        ({"workflow_id": "x" * 201}, "workflow_id"),
        ({"flavour": "x"}, "flavour"),
    ],
)
def test_bad_session_bodies(agent_with_key, body, field):
    _, key = agent_with_key
    response = agent_client(key).post("/api/v1/sessions", body, format="json")
    if field is None:  # DRF coerces 5 to "5": accepted as a goal
        assert response.status_code == 201
        return
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_never_assessed_agent_cannot_open_sessions(make_agent, admin_user):
    agent = make_agent("fresh", assessed=False)
    _, key = services.issue_key(agent, by=admin_user)
    response = agent_client(key).post("/api/v1/sessions", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agent_not_assessed"


def test_ending_another_agents_session_is_404_and_recorded(make_agent, admin_user, agent_with_key):
    _, key = agent_with_key
    other = make_agent("other")
    _, other_key = services.issue_key(other, by=admin_user)
    session = (
        agent_client(other_key).post("/api/v1/sessions", {}, format="json").json()["session_id"]
    )
    response = agent_client(key).post(f"/api/v1/sessions/{session}/end", format="json")
    assert response.status_code == 404
    (denied,) = events_of("access.denied")
    assert denied.payload["session_id"] == session
    assert (
        agent_client(other_key).post(f"/api/v1/sessions/{session}/end", format="json").status_code
        == 200
    )


def test_ending_twice_is_a_conflict(agent_with_key):
    _, key = agent_with_key
    bot = agent_client(key)
    session = bot.post("/api/v1/sessions", {}, format="json").json()["session_id"]
    assert bot.post(f"/api/v1/sessions/{session}/end", format="json").json()["status"] == "ended"
    response = bot.post(f"/api/v1/sessions/{session}/end", format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "session_ended"
    assert bot.post("/api/v1/sessions/not-a-uuid/end", format="json").status_code == 404


def test_operator_tokens_authenticate_and_are_hashed(make_operator):
    from django.core.management import call_command
    from rest_framework.test import APIClient

    out = __import__("io").StringIO()
    call_command("create_operator", "carol", "--role", "compliance", "--token", stdout=out)
    token = next(
        line.split(": ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("token: ")
    )
    assert token.startswith("wdn_op_")
    assert not OperatorToken.objects.filter(key_hash=token).exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/agents").status_code == 200
    assert client.post("/api/v1/agents", {"name": "by-token"}, format="json").status_code == 201
    client.credentials(HTTP_AUTHORIZATION=f"Token {token[:-2]}xx")
    assert client.get("/api/v1/agents").status_code == 401


def test_role_matrix_for_registry_endpoints(make_operator, make_agent):
    agent = make_agent()
    expectations = {
        "viewer": {"read": 200, "pause": 403, "keys": 403, "patch": 403},
        "reviewer": {"read": 200, "pause": 403, "keys": 403, "patch": 403},
        "compliance": {"read": 200, "pause": 403, "keys": 403, "patch": 403},
        "oncall": {"read": 200, "pause": 200, "keys": 403, "patch": 403},
        "admin": {"read": 200, "pause": 409, "keys": 201, "patch": 200},
    }
    for role, expected in expectations.items():
        client = client_for(make_operator(role))
        seen = {
            "read": client.get(f"/api/v1/agents/{agent.id}").status_code,
            "pause": client.post(
                f"/api/v1/agents/{agent.id}/pause", {"reason": role}, format="json"
            ).status_code,
            "keys": client.post(f"/api/v1/agents/{agent.id}/keys", {}, format="json").status_code,
            "patch": client.patch(
                f"/api/v1/agents/{agent.id}", {"reason": "r", "description": role}, format="json"
            ).status_code,
        }
        assert seen == expected, role
