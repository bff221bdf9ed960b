"""Operator API for policies, rules, guardrails and backtests (SPEC §9)."""

from __future__ import annotations

import datetime as dt
import uuid

from console.authorize.models import Guardrail
from tests.console.authorize.conftest import propose
from tests.helpers import client_for, events_of

MODULE = 'package warden.api_test\n\nimport rego.v1\n\ndefault verdict := "allow"\n\nverdict := "block" if input.action.name == "delete"\n'
BROKEN = 'package warden.broken\n\ndefault verdict := "allow"\nverdict := "block" if {\n   input.action.amount >\n}\n'


def test_policies_are_created_listed_changed_and_deleted(api):
    created = api.post("/api/v1/policies", {"name": "no-delete", "module": MODULE}, format="json")
    assert created.status_code == 201, created.content
    policy = created.json()
    assert (
        policy["mode"] == "enforce"
        and policy["package"] == "warden.api_test"
        and policy["agent"] is None
    )
    assert [p["name"] for p in api.get("/api/v1/policies").json()["results"]] == ["no-delete"]
    changed = api.patch(
        f"/api/v1/policies/{policy['id']}", {"mode": "shadow"}, format="json"
    ).json()
    assert changed["mode"] == "shadow" and changed["version"] == 2
    assert api.delete(f"/api/v1/policies/{policy['id']}").json()["deleted_at"]
    assert api.get("/api/v1/policies").json()["results"] == []
    assert api.get(f"/api/v1/policies/{policy['id']}").status_code == 404
    assert [e.event_type for e in events_of("policy.created") + events_of("policy.changed")] == [
        "policy.created",
        "policy.changed",
        "policy.changed",
    ]


def test_a_policy_with_a_syntax_error_is_400_with_the_line(api):
    response = api.post("/api/v1/policies", {"name": "broken", "module": BROKEN}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "policy_invalid"
    assert error["fields"]["module"] == ["line 5, column 24: Invalid boolean operator"]
    draft = api.post(
        "/api/v1/policies", {"name": "broken", "module": BROKEN, "mode": "disabled"}, format="json"
    )
    assert draft.status_code == 201
    enable = api.patch(f"/api/v1/policies/{draft.json()['id']}", {"mode": "enforce"}, format="json")
    assert enable.status_code == 400 and "line 5" in enable.json()["error"]["fields"]["module"][0]


def test_the_policy_test_endpoint_evaluates_without_saving(api):
    response = api.post(
        "/api/v1/policies/test",
        {"module": MODULE, "input": {"action": {"name": "delete"}}},
        format="json",
    )
    assert response.json()["verdict"] == "BLOCK"
    broken = api.post(
        "/api/v1/policies/test", {"module": BROKEN, "input": {}}, format="json"
    ).json()
    assert broken["problems"][0]["line"] == 5


def test_rules_round_trip(api, make_agent):
    agent = make_agent("ruled")
    body = {
        "name": "contract-burst",
        "kind": "rate",
        "pattern": "contract.commit",
        "window_seconds": 86400,
        "threshold": 3,
        "verdict": "halt",
        "severity": "critical",
        "priority": 90,
        "agent": str(agent.id),
    }
    created = api.post("/api/v1/rules", body, format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["threshold"] == 3 and rule["agent"] == str(agent.id)
    patched = api.patch(
        f"/api/v1/rules/{rule['id']}", {"threshold": 5, "agent": None}, format="json"
    ).json()
    assert patched["threshold"] == 5 and patched["agent"] is None
    bad = api.post(
        "/api/v1/rules",
        {**body, "name": "x", "kind": "sequence", "agent": str(uuid.uuid4())},
        format="json",
    )
    assert bad.status_code == 400 and "agent" in bad.json()["error"]["fields"]
    unknown = api.post("/api/v1/rules", {**body, "colour": 1}, format="json")
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["fields"]


def test_canary_tokens_are_write_only(api):
    created = api.post(
        "/api/v1/guardrails",
        {
            "name": "canary",
            "kind": "canary",
            "mode": "block",
            "config": {"tokens": ["CANARY-7f3a9c1e"]},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert "CANARY-7f3a9c1e" not in created.content.decode()
    listing = api.get("/api/v1/guardrails").content.decode()
    assert "CANARY-7f3a9c1e" not in listing
    guardrail = created.json()
    assert guardrail["config"]["token_count"] == 1
    renamed = api.patch(
        f"/api/v1/guardrails/{guardrail['id']}", {"enforcement": "shadow"}, format="json"
    ).json()
    assert renamed["enforcement"] == "shadow" and renamed["config"]["token_count"] == 1
    assert "CANARY-7f3a9c1e" not in str([e.payload_json for e in events_of("guardrail.created")])


def test_the_default_guardrails_are_listed(api):
    names = {g["name"] for g in api.get("/api/v1/guardrails").json()["results"]}
    assert {"pii", "payload-size"} <= names
    assert Guardrail.objects.filter(name="pii").exists()


def test_writes_need_manage_policies(make_operator):
    viewer = client_for(make_operator("viewer"))
    assert viewer.get("/api/v1/policies").status_code == 200
    assert (
        viewer.post("/api/v1/policies", {"name": "x", "module": MODULE}, format="json").status_code
        == 403
    )
    assert events_of("access.denied")[0].payload["permission"] == "manage_policies"


def test_backtest_endpoints_count_per_verdict(api, governed, t0):
    agent, session = governed()
    for minute, name in enumerate(("invoice.read", "delete", "invoice.read")):
        propose(agent, session, name, now=t0 + dt.timedelta(minutes=minute))
    policy = api.post(
        "/api/v1/policies",
        {"name": "no-delete", "module": MODULE, "mode": "disabled"},
        format="json",
    ).json()
    window = {
        "agent": str(agent.id),
        "from": (t0 - dt.timedelta(hours=1)).isoformat(),
        "to": (t0 + dt.timedelta(hours=1)).isoformat(),
    }
    result = api.post(f"/api/v1/policies/{policy['id']}/backtest", window, format="json")
    assert result.status_code == 200, result.content
    body = result.json()
    assert body["counts"] == {"ALLOW": 2, "REQUIRE_APPROVAL": 0, "BLOCK": 1, "HALT": 0}
    assert body["actions"]["BLOCK"][0]["name"] == "delete" and body["changed"] == 1
    rule = api.post(
        "/api/v1/rules",
        {
            "name": "reads",
            "kind": "rate",
            "pattern": "invoice.read",
            "window_seconds": 3600,
            "threshold": 1,
            "verdict": "halt",
        },
        format="json",
    ).json()
    result = api.post(f"/api/v1/rules/{rule['id']}/backtest", window, format="json").json()
    assert result["counts"]["HALT"] == 1 and result["not_applicable"] == 1
    bad = api.post(
        f"/api/v1/rules/{rule['id']}/backtest", {**window, "to": window["from"]}, format="json"
    )
    assert bad.status_code == 400 and "to" in bad.json()["error"]["fields"]
    assert len(events_of("policy.backtested")) == 1 and len(events_of("rule.backtested")) == 1
