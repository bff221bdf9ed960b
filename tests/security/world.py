"""A small governed world of real objects, so every URL with an id reaches a real row.

The access matrix and the schema fuzzer substitute these ids into routes: a view that
checks its role only after the lookup (or forgets to) is caught, because the lookup
succeeds. Everything is made through the service functions, as the console would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import open_review
from audit.filters import LogFilter
from audit.models import GovernanceEvent
from audit.services import run_export, start_export
from console import services
from console.authorize import services as authz
from console.authorize.runtime import evaluate_action
from console.models import Agent
from tests.approvals.helpers import propose_needing_approval
from tests.helpers import integrate, mark_assessed
from trust.models import Alert

SCOPE = {
    "allowed_actions": ["invoice.read", "contract.commit"],
    "allowed_targets": ["vendor:*"],
    "sensitive_actions": ["contract.commit"],
}
# Route parameters that are not ids: a value every view accepts.
FIXED = {"tab": "authorize", "action": "pause", "outcome": "pause", "step": "base-security"}


@dataclass
class World:
    agent: Agent
    agent_key: str
    foreign_agent: Agent
    foreign_key: str
    ids: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        if name in FIXED:
            return FIXED[name]
        return self.ids[name]

    def path(self, route: str) -> str:
        """A route pattern (``agents/<str:agent_id>/``) with this world's values."""
        path = route
        if "/resolve/" in route:  # pause / revoke outcomes exist for re-authorization reviews
            route = path = route.replace("<str:approval_id>", self.ids["review_id"])
        while "<" in path:
            start = path.index("<")
            end = path.index(">", start)
            name = path[start + 1 : end].split(":")[-1]
            path = path[:start] + self.value(name) + path[end + 1 :]
        return "/" + path.lstrip("^").rstrip("$")


def build_world(admin) -> World:
    agent = mark_assessed(
        services.register_agent(name="sec-alpha", by=admin, description="alpha", scope=SCOPE)
    )
    key, agent_key = services.issue_key(agent, by=admin, label="alpha key")
    foreign = mark_assessed(services.register_agent(name="sec-beta", by=admin))
    _, foreign_key = services.issue_key(foreign, by=admin, label="beta key")
    operator_token, _ = services.issue_operator_token(admin, by=admin)

    session = services.open_session(agent, goal="security walk")
    answer = evaluate_action(agent, session, name="invoice.read", target="vendor:acme")
    approval = propose_needing_approval(agent, session)
    policy = authz.create_policy(
        by=admin,
        name="sec-policy",
        module='package warden.sec_policy\nimport rego.v1\ndefault verdict := "allow"\n'
        'verdict := "block" if input.action.name == "never.this"\n',
    )
    rule = authz.create_rule(
        by=admin,
        name="sec-rule",
        kind="rate",
        pattern="never.*",
        window_seconds=60,
        threshold=100,
        verdict="block",
        severity="major",
    )
    guardrail = authz.create_guardrail(
        by=admin, name="sec-words", kind="banned_words", mode="log", config={"words": ["zz"]}
    )
    integrate()
    export = start_export(LogFilter.parse({}), "xlsx", by=admin)
    run_export(str(export.id))  # finished, so its download and manifest exist
    with transaction.atomic():
        review = open_review(
            agent,
            cause_event_id=uuid.uuid4(),
            kind="velocity",
            reason="trust falling fast (test)",
            previous_tier=2,
            new_tier=3,
        )
    alert = Alert.objects.create(
        agent=agent,
        kind=Alert.Kind.VELOCITY,
        message="trust falling fast (test)",
        event_id=uuid.uuid4(),
        effective_at=timezone.now(),
    )
    event = GovernanceEvent.objects.order_by("timestamp").first()
    assert isinstance(approval, ApprovalRequest)
    ids = {
        "agent_id": str(agent.id),
        "key_id": str(key.id),
        "session_id": str(session.id),
        "action_id": str(answer["action_id"]),
        "approval_id": str(approval.id),
        "review_id": str(review.id),
        "policy_id": str(policy.id),
        "rule_id": str(rule.id),
        "guardrail_id": str(guardrail.id),
        "export_id": str(export.id),
        "alert_id": str(alert.id),
        "event_id": str(event.id),
        "token_prefix": operator_token.prefix,
        "username": admin.get_username(),
    }
    return World(agent, agent_key, foreign, foreign_key, ids)
