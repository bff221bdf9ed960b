"""manage.py bootstrap_demo seeds what the demo fleet needs, once (re-running duplicates
nothing), through the services — so every seeded change is a signed event."""

from __future__ import annotations

import json
import stat
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from audit.models import GovernanceEvent
from console import services
from console.authorize import canary
from console.authorize.models import Guardrail, Policy, Rule
from console.models import Agent, ApiKey
from console.roles import ROLES, roles_of
from tests.assessments.vectors import PROCUREMENT
from tests.helpers import agent_client

pytestmark = pytest.mark.django_db

NAMES = {
    "procurement": "procurement-agent",
    "support": "support-agent",
    "observability": "observability-agent",
    "summariser": "inbox-summariser",
}


def test_it_seeds_one_operator_per_role_with_the_password_it_prints(demo_files, bootstrap):
    _, printed = bootstrap()
    User = get_user_model()
    for role in ROLES:
        user = User.objects.get(username=role)
        assert roles_of(user) == frozenset({role})
    lines = dict(line.split(" / ") for line in printed.strip().splitlines())
    assert set(lines) == set(ROLES)
    assert User.objects.get(username="admin").check_password(lines["admin"])
    assert User.objects.get(username="reviewer").check_password(lines["reviewer"])
    assert stat.S_IMODE(demo_files[1].stat().st_mode) == 0o600


def test_it_registers_assesses_and_scopes_the_four_agents(bootstrap):
    bootstrap()
    agents = {a.name: a for a in Agent.objects.all()}
    assert set(agents) == set(NAMES.values())
    procurement = agents["procurement-agent"]
    expected = PROCUREMENT["expected"]
    assert procurement.risk_percent == Decimal(str(expected["risk_percent"]))
    assert procurement.risk_tier == 3
    assert procurement.trust_score == Decimal(str(expected["initial_trust_score"]))
    assert procurement.scope["excluded_actions"] == ["payment.*"]
    assert procurement.scope["allowed_targets"] == ["vendor:*"]
    assert "contract.commit" in procurement.scope["sensitive_actions"]
    assert agents["observability-agent"].effective_tier == 4
    assert agents["support-agent"].risk_tier == 3
    assert agents["inbox-summariser"].risk_tier == 2
    # Owned by compliance, so admin and reviewer may decide their approvals (SPEC §4).
    assert {a.owner.username for a in agents.values()} == {"compliance"}
    assert all(a.status == Agent.Status.ACTIVE for a in agents.values())


def test_it_creates_the_scenario_rules_and_the_guardrails(bootstrap):
    document, _ = bootstrap()
    procurement = Agent.objects.get(name="procurement-agent")
    rules = {r.kind: r for r in Rule.objects.filter(agent=procurement)}
    assert set(rules) == {"cumulative", "rate", "first_seen"}
    assert rules["cumulative"].threshold == Decimal("250000.00")
    assert rules["cumulative"].window_seconds == 72 * 3600
    assert rules["cumulative"].verdict == "require_approval"
    assert (rules["rate"].threshold, rules["rate"].window_seconds) == (3, 24 * 3600)
    assert (rules["rate"].verdict, rules["rate"].severity) == ("halt", "critical")
    assert rules["first_seen"].verdict == "require_approval"

    pii = Guardrail.objects.get(agent__name="support-agent", kind="pii")
    assert (pii.mode, pii.enforcement) == ("redact", "enforce")
    trap = Guardrail.objects.get(agent__name="inbox-summariser", kind="canary")
    assert trap.enforcement == "enforce"
    assert canary.tokens_of(trap) == (document["canary"],)
    assert document["canary"] not in json.dumps(trap.config)


def test_the_support_agents_refund_policy_is_on_trial_recorded_not_enforced(bootstrap):
    document, _ = bootstrap()
    policy = Policy.objects.get(name="demo-refund-limit")
    assert (policy.agent.name, policy.mode) == ("support-agent", "shadow")
    client = agent_client(document["agents"]["support"]["key"])
    session = client.post("/api/v1/sessions", {"goal": "refund"}, format="json").json()
    actions = f"/api/v1/sessions/{session['session_id']}/actions"

    def propose(body):
        response = client.post(actions, body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        assert response.status_code == 200, response.content
        answer = response.json()
        event = GovernanceEvent.objects.get(id=answer["event_id"])
        trial = [v for v in event.payload["shadow_verdicts"] if v["source"] == policy.source]
        return answer["verdict"], trial

    # The Rego policy would block the demo's refund; the tier preset still decides.
    verdict, trial = propose(
        {
            "name": "refund.issue",
            "target": "customer:C-311",
            "amount": "49.90",
            "currency": "USD",
            "sensitive": True,
        }
    )
    assert verdict == "REQUIRE_APPROVAL"
    assert [(v["verdict"], v["reason"]) for v in trial] == [
        ("BLOCK", "refunds over USD 25 go through finance")
    ]
    verdict, trial = propose({"name": "kb.search", "target": "kb:help-center"})
    assert verdict == "ALLOW"
    assert [v["verdict"] for v in trial] == ["ALLOW"]


def test_the_keys_file_is_private_and_each_key_authenticates_as_its_agent(demo_files, bootstrap):
    document, _ = bootstrap()
    assert stat.S_IMODE(demo_files[0].stat().st_mode) == 0o600
    assert set(document["agents"]) == set(NAMES)
    for role, entry in document["agents"].items():
        assert entry["name"] == NAMES[role]
        response = agent_client(entry["key"]).post(
            "/api/v1/sessions", {"goal": "check the key"}, format="json"
        )
        assert response.status_code == 201, response.content
        session = Agent.objects.get(name=NAMES[role]).sessions.get()
        assert str(session.id) == response.json()["session_id"]


def counts() -> tuple[int, ...]:
    models = (get_user_model(), Agent, ApiKey, Rule, Guardrail, Policy, GovernanceEvent)
    return tuple(model.objects.count() for model in models)


def test_running_it_again_duplicates_nothing_and_records_nothing(bootstrap):
    first, printed = bootstrap()
    before = counts()
    second, printed_again = bootstrap()
    assert second == first
    assert printed_again == printed
    assert counts() == before


def test_a_revoked_key_is_replaced_and_a_revoked_agent_stays_revoked(bootstrap):
    first, _ = bootstrap()
    admin = get_user_model().objects.get(username="admin")
    support = Agent.objects.get(name="support-agent")
    key = ApiKey.objects.get(agent=support)
    services.revoke_key(key, by=admin, reason="rotated")
    services.revoke_agent(Agent.objects.get(name="inbox-summariser"), by=admin, reason="test")

    second, _ = bootstrap()
    assert second["agents"]["support"]["key"] != first["agents"]["support"]["key"]
    assert ApiKey.objects.filter(agent=support, revoked_at__isnull=True).count() == 1
    assert second["agents"]["procurement"] == first["agents"]["procurement"]
    assert second["agents"]["summariser"]["key"] is None
    assert Agent.objects.get(name="inbox-summariser").status == Agent.Status.REVOKED
