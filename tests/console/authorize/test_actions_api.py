"""The agent runtime API (SPEC §9): proposals with Idempotency-Key, results, and bad input
— each refusal a specific 4xx with an ``access.denied`` event, never a 500."""

from __future__ import annotations

import json
import uuid

import pytest

from console import services
from console.authorize import services as authz
from console.authorize.models import Action, IdempotencyRecord
from tests.helpers import agent_client, events_of


@pytest.fixture
def agent_api(agent_with_key):
    agent, key = agent_with_key
    client = agent_client(key)
    session_id = client.post("/api/v1/sessions", {"goal": "g"}, format="json").json()["session_id"]
    return agent, client, session_id


def post_action(client, session_id, body, *, key=None, raw=None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key or str(uuid.uuid4())} if key is not False else {}
    data = raw if raw is not None else json.dumps(body)
    return client.post(
        f"/api/v1/sessions/{session_id}/actions",
        data,
        content_type="application/json",
        **headers,
        **extra,
    )


def denied():
    return [(e.payload.get("code"), e.payload.get("status")) for e in events_of("access.denied")]


def test_a_proposal_gets_the_spec_answer(agent_api):
    agent, client, session_id = agent_api
    response = post_action(
        client, session_id, {"name": "invoice.read", "target": "vendor:acme", "amount": "10.00"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "action_id",
        "verdict",
        "reason",
        "source",
        "constrained",
        "args",
        "approval_id",
        "approval_expires_at",
        "event_id",
    }
    assert body["verdict"] == "ALLOW"


def test_the_same_key_and_body_get_the_first_answer_again(agent_api):
    agent, client, session_id = agent_api
    first = post_action(client, session_id, {"name": "invoice.read"}, key="k-1").json()
    again = post_action(client, session_id, {"name": "invoice.read"}, key="k-1").json()
    assert again == first
    assert Action.objects.count() == 1 and len(events_of("action.evaluated")) == 1
    assert IdempotencyRecord.objects.get().action_id == uuid.UUID(first["action_id"])


def test_the_same_key_with_another_body_is_422(agent_api):
    agent, client, session_id = agent_api
    post_action(client, session_id, {"name": "invoice.read"}, key="k-1")
    response = post_action(client, session_id, {"name": "invoice.flag"}, key="k-1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert denied() == [("idempotency_key_reused", 422)]


def test_a_proposal_needs_an_idempotency_key(agent_api):
    agent, client, session_id = agent_api
    response = post_action(client, session_id, {"name": "invoice.read"}, key=False)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


@pytest.mark.parametrize(
    ("raw", "code", "fields"),
    [
        ('{"name": "invoice.read",', "malformed_json", None),
        (json.dumps(["invoice.read"]), "invalid", ["non_field_errors"]),
        (json.dumps({"name": 12}), "invalid", ["name"]),
        (json.dumps({"name": "a", "amount": "lots"}), "invalid", ["amount"]),
        (json.dumps({"name": "a", "amount": True}), "invalid", ["amount"]),
        (json.dumps({"name": "a", "amount": "-1"}), "invalid", ["amount"]),
        (json.dumps({"name": "a", "amount": "1.234"}), "invalid", ["amount"]),
        (json.dumps({"name": "a", "sensitive": "yes"}), "invalid", ["sensitive"]),
        (json.dumps({"name": "a", "args": [1, 2]}), "invalid", ["args"]),
        (json.dumps({"name": "a", "currency": "dollars"}), "invalid", ["currency"]),
        (json.dumps({"name": "a", "parent_action_id": "nope"}), "invalid", ["parent_action_id"]),
        (json.dumps({"name": "a", "colour": "red", "size": 1}), "invalid", ["colour", "size"]),
        (json.dumps({}), "invalid", ["name"]),
        # Strings that cannot be stored (a lone surrogate; NUL, which PostgreSQL refuses).
        ('{"name": "a", "args": {"x": "\\ud800"}}', "malformed_json", None),
        ('{"name": "a", "args": {"\\udfff": 1}}', "malformed_json", None),
        ('{"name": "a", "args": {"x": ["ok", "a\\u0000b"]}}', "malformed_json", None),
        ('{"name": "a\\u0000"}', "malformed_json", None),
    ],
)
def test_bad_input_is_a_specific_400_and_an_event(agent_api, raw, code, fields):
    agent, client, session_id = agent_api
    response = post_action(client, session_id, None, raw=raw)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    if fields:
        assert sorted(error["fields"]) == sorted(fields)
    (event,) = events_of("access.denied")
    assert event.agent_id == agent.id and event.payload["code"] == code
    assert not Action.objects.exists()


def test_a_body_over_256_kib_is_413(agent_api):
    agent, client, session_id = agent_api
    raw = json.dumps({"name": "upload", "args": {"blob": "x" * (256 * 1024)}})
    response = post_action(client, session_id, None, raw=raw)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert denied() == [("payload_too_large", 413)]


def test_another_agents_session_is_404(agent_api, make_agent):
    agent, client, _ = agent_api
    other = make_agent("other-agent")
    foreign = services.open_session(other)
    response = post_action(client, foreign.id, {"name": "invoice.read"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"
    (event,) = events_of("access.denied")
    assert event.reason == "session belongs to another agent"
    assert post_action(client, uuid.uuid4(), {"name": "x"}).status_code == 404
    assert post_action(client, "not-a-uuid", {"name": "x"}).status_code == 404


def test_an_ended_session_is_409_and_a_halted_one_answers_halt(agent_api, admin_user):
    agent, client, session_id = agent_api
    client.post(f"/api/v1/sessions/{session_id}/end")
    ended = post_action(client, session_id, {"name": "invoice.read"})
    assert ended.status_code == 409 and ended.json()["error"]["code"] == "session_ended"
    assert denied() == [("session_ended", 409)]

    halted_id = client.post("/api/v1/sessions", {}, format="json").json()["session_id"]
    session = agent.sessions.get(pk=halted_id)
    services.halt_session(session, by=admin_user, reason="on-call")
    answer = post_action(client, halted_id, {"name": "invoice.read"})
    assert answer.status_code == 200
    assert (answer.json()["verdict"], answer.json()["source"]) == ("HALT", "session")
    assert events_of("action.evaluated")[-1].verdict == "HALT"


def test_operators_cannot_propose(api, agent_api):
    _, _, session_id = agent_api
    response = api.post(f"/api/v1/sessions/{session_id}/actions", {"name": "x"}, format="json")
    assert response.status_code in (401, 403)


# --- results ---------------------------------------------------------------------------------
def post_result(client, session_id, action_id, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        f"/api/v1/sessions/{session_id}/actions/{action_id}/result", body, format="json", **headers
    )


def test_an_allowed_action_reports_its_result_once(agent_api, trust_calls):
    agent, client, session_id = agent_api
    action_id = post_action(client, session_id, {"name": "invoice.read"}).json()["action_id"]
    first = post_result(
        client,
        session_id,
        action_id,
        {"status": "ok", "output": {"to": "bob@example.com"}},
        key="r1",
    )
    assert first.status_code == 200 and first.json()["status"] == "recorded"
    (completed,) = events_of("action.completed")
    assert completed.payload["output"] == {"to": "[REDACTED:email]"}
    assert completed.payload["status"] == "ok" and completed.result == "success"
    assert completed in trust_calls
    assert (
        post_result(client, session_id, action_id, {"status": "ok"}, key="r1").json()
        == first.json()
    )
    again = post_result(client, session_id, action_id, {"status": "ok"}, key="r2")
    assert again.status_code == 409 and again.json()["error"]["code"] == "result_already_reported"
    action = Action.objects.get(pk=action_id)
    assert action.result_status == "ok" and action.result_event_id == completed.id


def test_results_of_refused_or_unapproved_actions_are_refused(agent_api, admin_user, monkeypatch):
    agent, client, session_id = agent_api
    authz.create_policy(
        by=admin_user,
        name="gate",
        module='package g\nimport rego.v1\ndefault verdict := "allow"\n'
        'verdict := "block" if input.action.name == "delete"\n'
        'verdict := "require_approval" if input.action.name == "pay"\n',
    )
    blocked = post_action(client, session_id, {"name": "delete"}).json()["action_id"]
    response = post_result(client, session_id, blocked, {"status": "ok"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "action_not_allowed"
    pending = post_action(client, session_id, {"name": "pay"}).json()["action_id"]
    response = post_result(client, session_id, pending, {"status": "ok"})
    assert (
        response.status_code == 409 and response.json()["error"]["code"] == "approval_not_granted"
    )
    import approvals.services

    granted = []
    monkeypatch.setattr(
        approvals.services, "consume_approval", lambda **kw: granted.append(kw) or True
    )
    assert post_result(client, session_id, pending, {"status": "ok"}).status_code == 200
    assert granted[0]["args_sha256"] == Action.objects.get(pk=pending).args_sha256


def test_a_canary_in_an_output_halts_the_session(agent_api, admin_user):
    agent, client, session_id = agent_api
    authz.create_guardrail(
        by=admin_user,
        name="canary",
        kind="canary",
        stage="both",
        config={"tokens": ["CANARY-7f3a9c1e"]},
    )
    action_id = post_action(client, session_id, {"name": "db.query"}).json()["action_id"]
    answer = post_result(
        client, session_id, action_id, {"status": "ok", "output": "rows: CANARY-7f3a9c1e"}
    )
    assert answer.status_code == 200
    assert (answer.json()["verdict"], answer.json()["source"]) == ("HALT", "guardrail:canary")
    (completed,) = events_of("action.completed")
    assert completed.verdict == "HALT" and completed.payload["violation"] == {
        "severity": "critical"
    }
    assert agent.sessions.get(pk=session_id).status == "halted"
    assert events_of("guardrail.hit")[0].payload["stage"] == "output"


def test_bad_results_are_specific_errors(agent_api):
    agent, client, session_id = agent_api
    action_id = post_action(client, session_id, {"name": "invoice.read"}).json()["action_id"]
    assert post_result(client, session_id, action_id, {"status": "fine"}).status_code == 400
    assert (
        post_result(client, session_id, action_id, {"status": "ok", "extra": 1}).status_code == 400
    )
    missing = post_result(client, session_id, uuid.uuid4(), {"status": "ok"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "action_not_found"
    assert {code for code, _ in denied()} == {"invalid", "action_not_found"}


def test_a_result_may_come_after_the_session_ended(agent_api):
    agent, client, session_id = agent_api
    action_id = post_action(client, session_id, {"name": "invoice.read", "amount": "1"}).json()[
        "action_id"
    ]
    client.post(f"/api/v1/sessions/{session_id}/end")
    assert (
        post_result(
            client, session_id, action_id, {"status": "error", "output": "boom"}
        ).status_code
        == 200
    )
    assert events_of("action.completed")[0].result == "failed"


def test_the_effective_tier_of_the_request_decides(agent_api):
    from console.models import Agent

    agent, client, session_id = agent_api
    body = {"name": "invoice.pay", "sensitive": True}
    assert post_action(client, session_id, body).json()["verdict"] == "ALLOW"
    Agent.objects.filter(pk=agent.pk).update(effective_tier=3)  # trust moved meanwhile
    assert post_action(client, session_id, body).json()["verdict"] == "REQUIRE_APPROVAL"


def test_stored_answers_are_forgotten_after_a_day(agent_api):
    import datetime as dt

    from django.utils import timezone

    from console.tasks import purge_idempotency_records

    agent, client, session_id = agent_api
    post_action(client, session_id, {"name": "a"}, key="old")
    post_action(client, session_id, {"name": "b"}, key="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - dt.timedelta(hours=25)
    )
    assert purge_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert Action.objects.count() == 2


def test_the_real_server_refuses_bad_bodies_the_same_way(asgi_server, agent_with_key):
    import httpx

    agent, key = agent_with_key
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=asgi_server.url, headers=headers, timeout=20) as http:
        session_id = http.post("/api/v1/sessions", json={}).json()["session_id"]
        url = f"/api/v1/sessions/{session_id}/actions"
        big = http.post(
            url,
            content=json.dumps({"name": "x", "args": {"b": "x" * 300_000}}),
            headers={"Idempotency-Key": "k1"},
        )
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
        broken = http.post(url, content=b'{"name": ', headers={"Idempotency-Key": "k2"})
        assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"
        ok = http.post(url, json={"name": "invoice.read"}, headers={"Idempotency-Key": "k3"})
        assert ok.status_code == 200 and ok.json()["verdict"] == "ALLOW"
    assert denied() == [("payload_too_large", 413), ("malformed_json", 400)]


def test_an_unstorable_string_is_named_in_the_error(agent_api):
    _, client, session_id = agent_api
    response = post_action(
        client, session_id, None, raw='{"name": "a", "args": {"to": [1, "x\\u0000"]}}'
    )
    assert response.status_code == 400
    assert "args.to.1 holds a NUL character" in response.json()["error"]["message"]
    # A backslash-u sequence spelled out as text is just text.
    response = post_action(
        client, session_id, {"name": "a", "args": {"note": "\\u0000 and \\ud800"}}
    )
    assert response.status_code == 200, response.content


def test_nesting_is_accepted_to_64_levels_and_refused_deeper(agent_api):
    # Deeper bodies made Python's JSON decoder (or the recursive code after it) raise
    # RecursionError: a 500. The body itself is level 1, args level 2.
    _, client, session_id = agent_api

    def nested(levels: int) -> str:
        return '{"name": "a", "args": {"x": ' + "[" * levels + "]" * levels + "}}"

    assert post_action(client, session_id, None, raw=nested(62)).status_code == 200
    for levels in (63, 5_000, 100_000):
        response = post_action(client, session_id, None, raw=nested(levels))
        assert response.status_code == 400, levels
        assert "deeper than 64 levels" in response.json()["error"]["message"]
